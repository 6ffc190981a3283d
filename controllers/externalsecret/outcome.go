package externalsecret

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// outcome is what one sync found; status and scheduling are computed from it.
type outcome struct {
	reason  string
	message string
	err     error // non-nil: the sync failed
	retry   bool  // the failure is transient: back off and retry

	changed bool // the target's data was written
	event   string

	sources  []v1alpha1.SourceStatus
	dataHash string
	target   string
	leases   []v1alpha1.LeaseStatus
	keep     bool // no fetch happened: keep status fields as they are
	// clearHash: the target no longer holds our data (deletionPolicy Delete/Merge).
	clearHash   bool
	dynamicData map[string]map[string][]byte
}

func (o outcome) result() string {
	switch {
	case o.err != nil:
		return "error"
	case o.changed:
		return "synced"
	}
	return "unchanged"
}

func (o outcome) readyStatus() metav1.ConditionStatus {
	if o.err != nil {
		return metav1.ConditionFalse
	}
	return metav1.ConditionTrue
}

// fail builds a failed outcome. msg names fields and keys, never values.
func fail(reason string, retry bool, format string, args ...any) outcome {
	msg := fmt.Sprintf(format, args...)
	return outcome{reason: reason, message: msg, err: errors.New(msg), retry: retry}
}

// providerFailure maps a backend error to a reason; the message is sanitised.
func providerFailure(path string, err error) outcome {
	msg := path + ": " + provider.SafeMessage(err)
	if errors.Is(err, provider.ErrSpec) || errors.Is(err, provider.ErrNotCanonical) {
		// The spec asks for something no backend can answer: fix the spec.
		return outcome{reason: v1alpha1.ReasonInvalidSpec, message: msg, err: errors.New(msg), retry: false}
	}
	switch provider.Classify(err) {
	case provider.ErrNotFound:
		return outcome{reason: v1alpha1.ReasonKeyNotFound, message: msg, err: errors.New(msg), retry: true}
	case provider.ErrAccessDenied, provider.ErrAuth:
		return outcome{reason: v1alpha1.ReasonAuthFailed, message: msg, err: errors.New(msg), retry: true}
	case provider.ErrThrottled:
		return outcome{reason: v1alpha1.ReasonThrottled, message: msg, err: errors.New(msg), retry: true}
	case provider.ErrNotAllowed:
		return outcome{reason: v1alpha1.ReasonKeyNotAllowed, message: msg, err: errors.New(msg), retry: false}
	case provider.ErrCredentials:
		return outcome{reason: v1alpha1.ReasonStoreNotReady, message: msg, err: errors.New(msg), retry: true}
	}
	return outcome{reason: v1alpha1.ReasonProviderError, message: msg, err: errors.New(msg), retry: true}
}
