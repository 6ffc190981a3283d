package aws

import (
	"context"
	"time"

	"github.com/aws/smithy-go/middleware"
)

// RequestObserver is told about every AWS API operation call a client makes (once
// per call, after the SDK's retries): service ("Secrets Manager", "SSM", "STS"),
// operation ("GetSecretValue"), the error mapped by MapError (nil on success) and the
// duration. It is the hook for per-operation metrics; the fetch layer already counts
// provider-level calls in secretsync_provider_requests_total, so nothing is wired by
// default (two granularities in one counter would double every sum).
type RequestObserver func(service, operation string, err error, d time.Duration)

func observeMiddleware(observe RequestObserver) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("secretsyncObserve",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				observe(middleware.GetServiceID(ctx), middleware.GetOperationName(ctx), MapError(err), time.Since(start))
				return out, md, err
			}), middleware.Before)
	}
}
