package kube

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
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
			if !ok {
				continue
			}
			orig := p.DeepCopy()
			setPolicyStatus(p, want)
			if equality.Semantic.DeepEqual(orig.Status, p.Status) {
				continue
			}
			errs = append(errs, patchStatus(ctx, c, p, orig))
		}
		// An error requeues the whole pass with backoff.
		return reconcile.Result{}, errors.Join(errs...)
	}
}

// setPolicyStatus sets a policy's conditions and, as policy attachment (GEP-713)
// prescribes, its one ancestor status: the target, this controller and the same
// conditions. Other controllers' ancestor entries are kept.
func setPolicyStatus(p *authzv1alpha1.MCPAuthPolicy, want policyStatus) {
	for _, c := range []metav1.Condition{want.accepted, want.enforced} {
		if !sameCondition(p.Status.Conditions, c) {
			meta.SetStatusCondition(&p.Status.Conditions, c)
		}
	}
	t := p.Spec.TargetRef
	ns := gwv1.Namespace(p.Namespace)
	ref := gwv1.ParentReference{
		Group: ptr.To(gwv1.Group(t.Group)), Kind: ptr.To(gwv1.Kind(t.Kind)),
		Namespace: &ns, Name: gwv1.ObjectName(t.Name), SectionName: t.SectionName,
	}
	var mine *gwv1.PolicyAncestorStatus
	kept := p.Status.Ancestors[:0]
	for _, a := range p.Status.Ancestors {
		if a.ControllerName != ControllerName {
			kept = append(kept, a)
		} else if mine == nil {
			mine = &a
		}
	}
	if mine == nil {
		mine = &gwv1.PolicyAncestorStatus{ControllerName: ControllerName}
	}
	mine.AncestorRef = ref
	for _, c := range []metav1.Condition{want.accepted, want.enforced} {
		if !sameCondition(mine.Conditions, c) {
			meta.SetStatusCondition(&mine.Conditions, c)
		}
	}
	p.Status.Ancestors = append(kept, *mine)
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
