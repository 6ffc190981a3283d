package externalsecret

import (
	"errors"
	"fmt"
	"math"
	"reflect"
)

// Charged copies of text/template's comparison and index builtins.

type cmpKind int

const (
	cmpInvalid cmpKind = iota
	cmpBool
	cmpComplex
	cmpInt
	cmpFloat
	cmpString
	cmpUint
)

func cmpKindOf(v reflect.Value) cmpKind {
	switch v.Kind() {
	case reflect.Bool:
		return cmpBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cmpInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return cmpUint
	case reflect.Float32, reflect.Float64:
		return cmpFloat
	case reflect.Complex64, reflect.Complex128:
		return cmpComplex
	case reflect.String:
		return cmpString
	}
	return cmpInvalid
}

func tplIndirect(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

func isNilValue(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

func (b *renderBudget) eq(arg1 reflect.Value, arg2 ...reflect.Value) (bool, error) {
	arg1 = tplIndirect(arg1)
	if len(arg2) == 0 {
		return false, errors.New("missing argument for comparison")
	}
	k1 := cmpKindOf(arg1)
	for _, arg := range arg2 {
		arg = tplIndirect(arg)
		k2 := cmpKindOf(arg)
		truth := false
		switch {
		case k1 == cmpInt && k2 == cmpUint:
			truth = arg1.Int() >= 0 && uint64(arg1.Int()) == arg.Uint()
		case k1 == cmpUint && k2 == cmpInt:
			truth = arg.Int() >= 0 && arg1.Uint() == uint64(arg.Int())
		case k1 != k2:
			if arg1.IsValid() && arg.IsValid() {
				return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg.Type())
			}
		case k1 == cmpBool:
			truth = arg1.Bool() == arg.Bool()
		case k1 == cmpComplex:
			truth = arg1.Complex() == arg.Complex()
		case k1 == cmpFloat:
			truth = arg1.Float() == arg.Float()
		case k1 == cmpInt:
			truth = arg1.Int() == arg.Int()
		case k1 == cmpUint:
			truth = arg1.Uint() == arg.Uint()
		case k1 == cmpString:
			if arg1.Len() == arg.Len() {
				if err := b.scan(arg1.Len()); err != nil {
					return false, err
				}
			}
			truth = arg1.String() == arg.String()
		default:
			if arg1.Kind() != arg.Kind() && arg1.IsValid() && arg.IsValid() {
				return false, fmt.Errorf("non-comparable types %v and %v", arg1.Type(), arg.Type())
			}
			if isNilValue(arg1) || isNilValue(arg) {
				truth = isNilValue(arg) == isNilValue(arg1)
			} else {
				if !arg.Type().Comparable() {
					return false, fmt.Errorf("non-comparable type %v", arg.Type())
				}
				truth = arg1.Interface() == arg.Interface()
			}
		}
		if truth {
			return true, nil
		}
	}
	return false, nil
}

func (b *renderBudget) lt(arg1, arg2 reflect.Value) (bool, error) {
	arg1, arg2 = tplIndirect(arg1), tplIndirect(arg2)
	k1, k2 := cmpKindOf(arg1), cmpKindOf(arg2)
	switch {
	case k1 == cmpInvalid || k2 == cmpInvalid:
		return false, errors.New("invalid type for comparison")
	case k1 == cmpInt && k2 == cmpUint:
		return arg1.Int() < 0 || uint64(arg1.Int()) < arg2.Uint(), nil
	case k1 == cmpUint && k2 == cmpInt:
		return arg2.Int() >= 0 && arg1.Uint() < uint64(arg2.Int()), nil
	case k1 != k2:
		return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg2.Type())
	case k1 == cmpFloat:
		return arg1.Float() < arg2.Float(), nil
	case k1 == cmpInt:
		return arg1.Int() < arg2.Int(), nil
	case k1 == cmpUint:
		return arg1.Uint() < arg2.Uint(), nil
	case k1 == cmpString:
		if err := b.scan(min(arg1.Len(), arg2.Len())); err != nil {
			return false, err
		}
		return arg1.String() < arg2.String(), nil
	}
	return false, errors.New("invalid type for comparison")
}

func (b *renderBudget) index(item reflect.Value, indexes ...reflect.Value) (reflect.Value, error) {
	for _, ix := range indexes {
		item, ix = tplIndirect(item), tplIndirect(ix)
		for item.Kind() == reflect.Pointer && !item.IsNil() {
			item = item.Elem()
		}
		switch item.Kind() {
		case reflect.Array, reflect.Slice, reflect.String:
			var x int64
			switch cmpKindOf(ix) {
			case cmpInt:
				x = ix.Int()
			case cmpUint:
				x = int64(min(ix.Uint(), math.MaxInt64))
			default:
				return reflect.Value{}, errors.New("cannot index a list or string with that type")
			}
			if x < 0 || x >= int64(item.Len()) {
				return reflect.Value{}, fmt.Errorf("index out of range: %d", x)
			}
			item = item.Index(int(x))
		case reflect.Map:
			key, err := indexKey(ix, item.Type().Key())
			if err != nil {
				return reflect.Value{}, err
			}
			if key.Kind() == reflect.String {
				if err := b.scan(key.Len()); err != nil { // hashed
					return reflect.Value{}, err
				}
			}
			if x := item.MapIndex(key); x.IsValid() {
				item = x
			} else {
				item = reflect.Zero(item.Type().Elem())
			}
		case reflect.Invalid:
			return reflect.Value{}, errors.New("index of nil")
		default:
			return reflect.Value{}, fmt.Errorf("can't index item of type %s", item.Type())
		}
	}
	return item, nil
}

func indexKey(v reflect.Value, t reflect.Type) (reflect.Value, error) {
	switch {
	case !v.IsValid():
		if isNilValue(reflect.Zero(t)) || t.Kind() == reflect.Interface {
			return reflect.Zero(t), nil
		}
	case v.Type().AssignableTo(t):
		return v, nil
	case cmpKindOf(v) == cmpInt || cmpKindOf(v) == cmpUint:
		if k := reflect.Zero(t); (cmpKindOf(k) == cmpInt || cmpKindOf(k) == cmpUint) && v.Type().ConvertibleTo(t) {
			return v.Convert(t), nil
		}
	}
	return reflect.Value{}, fmt.Errorf("map key has the wrong type; want %s", t)
}

// Parse-time rules. Range over a number is refused when the parse tree shows that the
// range's value can be one: a number literal; len; and, or and default when an
// argument or the piped value can be one; a variable when any binding of that name
// (scopes ignored) can be one, or when it is the first of a range's two variables
// (the index); dot inside a with whose value can be one. Nothing else in the
// allowlist returns an integer (fromJson numbers are float64, which range refuses),
// and the _rangeable guard refuses at run time whatever these rules miss.
