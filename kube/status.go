package kube

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// writeStatus returns the status writer's reconcile function (leader only): it
// computes the same view as the snapshot builder and patches every registration
// and policy whose condition differs from what the view says.
func (s *Source) writeStatus(c client.Client) func(context.Context, reconcile.Request) (reconcile.Result, error) {
	return func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		in, err := s.read(ctx, c)
		if err != nil {
			return reconcile.Result{}, err
		}
		v := s.compute(in)
		var errs []error
		for i := range in.registrations {
			r := &in.registrations[i]
			want, ok := v.regStatus[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}]
			if !ok || sameCondition(r.Status.Conditions, want) {
				continue
			}
			orig := r.DeepCopy()
			meta.SetStatusCondition(&r.Status.Conditions, want)
			errs = append(errs, patchStatus(ctx, c, r, orig))
		}
		for i := range in.policies {
			p := &in.policies[i]
			want, ok := v.polStatus[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]
			if !ok || sameCondition(p.Status.Conditions, want) {
				continue
			}
			orig := p.DeepCopy()
			meta.SetStatusCondition(&p.Status.Conditions, want)
			errs = append(errs, patchStatus(ctx, c, p, orig))
		}
		// An error requeues the whole pass with backoff.
		return reconcile.Result{}, errors.Join(errs...)
	}
}

// patchStatus writes obj's status as a merge patch from orig. An object deleted
// meanwhile is not an error.
func patchStatus(ctx context.Context, c client.Client, obj, orig client.Object) error {
	err := c.Status().Patch(ctx, obj, client.MergeFrom(orig))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
