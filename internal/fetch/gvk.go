package fetch

import corev1 "k8s.io/api/core/v1"

var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")
