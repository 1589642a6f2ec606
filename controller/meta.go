package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type metav1ListOptions = metav1.ListOptions

func metaFor(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}
