package secretstore

import (
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// checkConditions returns the InvalidSpec message for the entries of spec.conditions
// that can never work ("" when all can): a namespaceSelector that is not a valid
// label selector, or an allowedKeys pattern that is not an RE2 expression. Admission
// (controllers/externalsecret) skips such entries, so it fails closed, but without
// this check the store would say Ready while an entry silently admits nothing.
// Admission refuses such patterns too (a CEL rule on allowedKeys, same RE2 engine);
// this check still covers stores stored before that rule, and selectors, which CEL
// cannot parse.
func checkConditions(conds []v1alpha1.StoreCondition) string {
	var problems []string
	for i, c := range conds {
		if c.NamespaceSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector); err != nil {
				problems = append(problems, fmt.Sprintf("spec.conditions[%d].namespaceSelector: invalid label selector: %v", i, err))
			}
		}
		for j, pattern := range c.AllowedKeys {
			if err := checkPattern(pattern); err != nil {
				problems = append(problems, fmt.Sprintf("spec.conditions[%d].allowedKeys[%d]: invalid regexp: %v", i, j, err))
			}
		}
	}
	return strings.Join(problems, "; ")
}

// checkPattern accepts a pattern that compiles on its own AND as admission matches
// it, ^(?:pattern)$. The first rule keeps a pattern from escaping its anchors
// ("a)|(.*" compiles only once wrapped, and would then admit every key); the second
// refuses what compiles alone but not wrapped (an unterminated \Q quote).
func checkPattern(pattern string) error {
	if _, err := regexp.Compile(pattern); err != nil {
		return err
	}
	if _, err := regexp.Compile(`^(?:` + pattern + `)$`); err != nil {
		return fmt.Errorf("as matched against the whole key: %w", err)
	}
	return nil
}
