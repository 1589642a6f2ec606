package kubeapi

import (
	"context"
	"fmt"
	"reflect"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/mno-sh/mno/builtins/kube/kclient"
)

// aggregateClusterRoles fills the rules of every ClusterRole that has an aggregation rule
// (the stock admin, edit and view among them) from the ClusterRoles its selectors match, as
// kube-controller-manager's clusterrole-aggregation controller does in a real cluster. The
// API server's bootstrap policy creates those roles with no rules of their own; without
// this, a user bound to "view" could do nothing at all here, unlike on k3s. It runs once at
// start, to a fixed point (admin aggregates edit, which aggregates view).
func aggregateClusterRoles(ctx context.Context, c *kclient.Client) error {
	for round := 0; round < 5; round++ {
		list, err := c.ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("aggregate ClusterRoles: %w", err)
		}
		changed := false
		for i := range list.Items {
			role := &list.Items[i]
			if role.AggregationRule == nil {
				continue
			}
			rules, err := aggregatedRules(role, list.Items)
			if err != nil {
				return err
			}
			if reflect.DeepEqual(rules, role.Rules) {
				continue
			}
			role.Rules = rules
			if _, err := c.ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("aggregate ClusterRole %s: %w", role.Name, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}

// aggregatedRules is the union, without duplicates and in a stable order, of the rules of
// the roles that role's selectors match.
func aggregatedRules(role *rbacv1.ClusterRole, all []rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	for _, sel := range role.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			return nil, fmt.Errorf("ClusterRole %s: aggregation selector: %w", role.Name, err)
		}
		for i := range all {
			other := &all[i]
			if other.Name == role.Name || !s.Matches(labels.Set(other.Labels)) {
				continue
			}
			for _, r := range other.Rules {
				if !containsRule(rules, r) {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules, nil
}

func containsRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	for _, have := range rules {
		if reflect.DeepEqual(have, r) {
			return true
		}
	}
	return false
}
