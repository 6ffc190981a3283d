package externalsecret

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// outcomeKind says what a sync did, and so what the reconciler does next.
type outcomeKind uint8

const (
	// kept: nothing was read or written; status stays as it is.
	kept outcomeKind = iota
	// synced: the backend was read and the target written if its bytes differed.
	synced
	// terminal: the spec or the store must change; no retry until one does.
	terminal
	// transient: the backend or the API server failed; retried with backoff.
	transient
	// conflict: a write lost an optimistic-lock race; retried quietly, nothing
	// reported (the next attempt reads the winner's version).
	conflict
)

// outcome is what one sync found; status, events and scheduling follow from it.
// Messages name fields and keys, never values.
type outcome struct {
	kind    outcomeKind
	reason  string
	message string
	event   string // a Normal event for a change (Updated, Deleted)
	// clearHash: the target no longer holds our data (deletionPolicy Delete/Merge).
	clearHash bool
	done      syncResult // kind synced only
	// forceSync: the force-sync value this refresh handled, whether it succeeded
	// or failed (status.observedForceSync).
	forceSync string
	// rollout: the last restart of consumers, for status.rollout (rollout.go); nil: unchanged.
	rollout *v1alpha1.RolloutStatus
}

// syncResult is what a successful refresh puts in status and memory.
type syncResult struct {
	changed     bool // the target's data was written
	sources     []v1alpha1.SourceStatus
	dataHash    string
	target      string
	leases      []v1alpha1.LeaseStatus
	dynamicData map[string]map[string][]byte
	// issued: leases this refresh issued (not renewed); on a failed refresh the Secret
	// does not hold them (unwritten).
	issued []v1alpha1.LeaseStatus
	// dataChanged: an existing target's data (not only its labels or annotations)
	// changed, which restarts its consumers (rollout.go). Never set on creation.
	dataChanged bool
}

func keep() outcome { return outcome{kind: kept} }

func (o outcome) failed() bool { return o.kind == terminal || o.kind == transient }

// result is the secretsync_sync_total label: a fixed set.
func (o outcome) result() string {
	switch {
	case o.failed():
		return "error"
	case o.kind == conflict:
		return "conflict"
	case o.kind == synced && o.done.changed:
		return "synced"
	}
	return "unchanged"
}

func (o outcome) readyStatus() metav1.ConditionStatus {
	if o.failed() {
		return metav1.ConditionFalse
	}
	return metav1.ConditionTrue
}

// failTerminal: the user must fix the spec, the store or the target.
func failTerminal(reason, format string, args ...any) outcome {
	return outcome{kind: terminal, reason: reason, message: fmt.Sprintf(format, args...)}
}

// failTransient: something outside the spec failed and may recover by itself.
func failTransient(reason, format string, args ...any) outcome {
	return outcome{kind: transient, reason: reason, message: fmt.Sprintf(format, args...)}
}

// kubeFailure: the API server failed a request about what (e.g. `spec.target:
// update Secret "db"`). A lost optimistic-lock race is a quiet retry.
func kubeFailure(what string, err error) outcome {
	if apierrors.IsConflict(err) {
		return outcome{kind: conflict, reason: v1alpha1.ReasonKubernetesError, message: what + ": conflict"}
	}
	return failTransient(v1alpha1.ReasonKubernetesError, "%s: %s", what, apiReason(err))
}

// providerFailure maps a backend error to a reason; the message is sanitised.
func providerFailure(path string, err error) outcome {
	msg := path + ": " + provider.SafeMessage(err)
	if errors.Is(err, provider.ErrSpec) || errors.Is(err, provider.ErrNotCanonical) {
		// The spec asks for something no backend can answer: fix the spec.
		return outcome{kind: terminal, reason: v1alpha1.ReasonInvalidSpec, message: msg}
	}
	kind, reason := transient, v1alpha1.ReasonProviderError
	switch class := provider.Classify(err); {
	case errors.Is(class, provider.ErrNotFound):
		reason = v1alpha1.ReasonKeyNotFound
	case errors.Is(class, provider.ErrAccessDenied), errors.Is(class, provider.ErrAuth):
		reason = v1alpha1.ReasonAuthFailed
	case errors.Is(class, provider.ErrThrottled):
		reason = v1alpha1.ReasonThrottled
	case errors.Is(class, provider.ErrNotAllowed):
		kind, reason = terminal, v1alpha1.ReasonKeyNotAllowed
	case errors.Is(class, provider.ErrCredentials):
		reason = v1alpha1.ReasonStoreNotReady
	}
	return outcome{kind: kind, reason: reason, message: msg}
}
