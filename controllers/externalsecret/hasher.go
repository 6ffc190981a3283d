package externalsecret

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// HashKeySecret is the Secret in the operator's namespace holding the HMAC key of
// status.dataHash. A keyed hash, unlike a plain one, cannot be used to confirm a
// guess of a low-entropy secret by anyone who can read ExternalSecret status.
const HashKeySecret = "secretsync-hash-key"

// Hasher computes status.dataHash. The key is loaded (or created) once.
type Hasher struct {
	Reader    client.Reader // uncached: the key Secret is not a managed Secret
	Writer    client.Client
	Namespace string

	mu  sync.Mutex
	key []byte
}

func (h *Hasher) load(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key != nil {
		return h.key, nil
	}
	s := &corev1.Secret{}
	err := h.Reader.Get(ctx, types.NamespacedName{Namespace: h.Namespace, Name: HashKeySecret}, s)
	if apierrors.IsNotFound(err) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: HashKeySecret}, Data: map[string][]byte{"key": key}}
		err = h.Writer.Create(ctx, s)
		if apierrors.IsAlreadyExists(err) { // another replica won the race
			err = h.Reader.Get(ctx, types.NamespacedName{Namespace: h.Namespace, Name: HashKeySecret}, s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("hash key secret %s/%s: %s", h.Namespace, HashKeySecret, apiReason(err))
	}
	if len(s.Data["key"]) < 16 {
		return nil, fmt.Errorf("hash key secret %s/%s has no usable key", h.Namespace, HashKeySecret)
	}
	h.key = s.Data["key"]
	return h.key, nil
}

// Sum is the keyed hash of data restricted to keys (all keys when keys is nil).
func (h *Hasher) Sum(ctx context.Context, data map[string][]byte, keys []string) (string, error) {
	key, err := h.load(ctx)
	if err != nil {
		return "", err
	}
	if keys == nil {
		for k := range data {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	m := hmac.New(sha256.New, key)
	for _, k := range keys {
		v, ok := data[k]
		if !ok {
			continue
		}
		fmt.Fprintf(m, "%d:%s%d:", len(k), k, len(v))
		m.Write(v)
	}
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)), nil
}
