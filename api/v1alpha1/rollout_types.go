package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutConsumers says which workloads a data change restarts besides the explicit targets.
// +kubebuilder:validation:Enum=Auto;None
type RolloutConsumers string

const (
	// RolloutAuto restarts every Deployment, StatefulSet and DaemonSet of the
	// namespace whose pod template uses the target Secret.
	RolloutAuto RolloutConsumers = "Auto"
	// RolloutNone restarts only the explicit targets (the default).
	RolloutNone RolloutConsumers = "None"
)

// WorkloadKind is a kind of workload a rollout may restart.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
type WorkloadKind string

const (
	WorkloadDeployment  WorkloadKind = "Deployment"
	WorkloadStatefulSet WorkloadKind = "StatefulSet"
	WorkloadDaemonSet   WorkloadKind = "DaemonSet"
)

// Rollout restarts the workloads that use the target Secret when its data changes
// (not on its creation, not for a label or annotation change). See docs/rotation.md.
type Rollout struct {
	// Consumers: Auto (every workload of the namespace using the Secret) or None (default).
	// +optional
	Consumers RolloutConsumers `json:"consumers,omitempty"`
	// Targets are workloads of the ExternalSecret's namespace restarted in addition
	// to Auto's. A workload annotated secretsync.dev/rollout: "false" is never restarted.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Targets []WorkloadRef `json:"targets,omitempty"`
}

// WorkloadRef names a workload in the ExternalSecret's namespace.
type WorkloadRef struct {
	// +required
	Kind WorkloadKind `json:"kind"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RolloutStatus is what the last restart did.
type RolloutStatus struct {
	// LastRestartAt is when workloads were last restarted for a data change.
	// +optional
	LastRestartAt *metav1.Time `json:"lastRestartAt,omitempty"`
	// Restarted are the workloads restarted that last time (at most 50 are listed).
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Restarted []WorkloadRef `json:"restarted,omitempty"`
}

const (
	// AnnotationRollout: "false" on a workload's metadata.annotations opts it out of
	// every restart, Auto and explicit alike.
	AnnotationRollout = "secretsync.dev/rollout"
	// AnnotationRestartedAt is the pod template annotation a restart sets (RFC 3339
	// time), the same mechanism as `kubectl rollout restart`.
	AnnotationRestartedAt = "secretsync.dev/restartedAt"
)
