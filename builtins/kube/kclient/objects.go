package kclient

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Object is a pointer to an API object type, such as *corev1.ConfigMap.
type Object interface {
	runtime.Object
	GetName() string
}

// Kind describes one resource of the API: T is a pointer to its Go type and
// L to its list type (from k8s.io/api). Group "" is the core API (/api/v1).
type Kind[T Object, L runtime.Object] struct {
	Group, Version string
	// Resource is the plural, lower-case name in the URL: "configmaps".
	Resource   string
	Namespaced bool
}

func (k Kind[T, L]) groupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: k.Group, Version: k.Version}
}

func (k Kind[T, L]) register(s *runtime.Scheme) {
	s.AddKnownTypes(k.groupVersion(), newOf[T](), newOf[L]())
}

// prefix is the path of the kind's group version.
func (k Kind[T, L]) prefix() []string {
	if k.Group == "" {
		return []string{"/api", k.Version}
	}
	return []string{"/apis", k.Group, k.Version}
}

// newOf returns a new zero object of the type T points to.
func newOf[T runtime.Object]() T {
	return reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
}

// Objects are the objects of one kind in one namespace ("" for a
// cluster-scoped kind, or for a list or watch across all namespaces). Its
// methods mirror client-go's typed clients.
type Objects[T Object, L runtime.Object] struct {
	c    *Client
	kind Kind[T, L]
	ns   string
}

// For returns the objects of kind k in namespace ns.
func For[T Object, L runtime.Object](c *Client, k Kind[T, L], ns string) Objects[T, L] {
	return Objects[T, L]{c: c, kind: k, ns: ns}
}

// request starts a request for the collection (name "") or one object.
func (o Objects[T, L]) request(verb, name string, subresources ...string) *rest.Request {
	r := o.c.rest.Verb(verb).AbsPath(o.kind.prefix()...).NamespaceIfScoped(o.ns, o.kind.Namespaced && o.ns != "").Resource(o.kind.Resource)
	if name != "" {
		r = r.Name(name)
	}
	if len(subresources) > 0 {
		r = r.SubResource(subresources...)
	}
	return r
}

// Get reads the object called name.
func (o Objects[T, L]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	return o.into(o.request("GET", name).VersionedParams(&opts, metav1.ParameterCodec).Do(ctx))
}

// List reads the objects that opts select.
func (o Objects[T, L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	l := newOf[L]()
	if err := o.request("GET", "").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(l); err != nil {
		var zero L
		return zero, err
	}
	return l, nil
}

// Watch streams the changes of the objects that opts select (opts.Watch is
// set for the caller).
func (o Objects[T, L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return o.request("GET", "").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

// Create creates obj and returns it as the server stored it.
func (o Objects[T, L]) Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	return o.into(o.request("POST", "").VersionedParams(&opts, metav1.ParameterCodec).Body(obj).Do(ctx))
}

// Update replaces obj, guarded by its resourceVersion when it has one.
func (o Objects[T, L]) Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	return o.into(o.request("PUT", obj.GetName()).VersionedParams(&opts, metav1.ParameterCodec).Body(obj).Do(ctx))
}

// UpdateStatus replaces obj's status subresource.
func (o Objects[T, L]) UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	return o.into(o.request("PUT", obj.GetName(), "status").VersionedParams(&opts, metav1.ParameterCodec).Body(obj).Do(ctx))
}

// Patch applies a patch of type pt to the object called name (or to one of
// its subresources).
func (o Objects[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error) {
	return o.into(o.request("PATCH", name, subresources...).SetHeader("Content-Type", string(pt)).
		VersionedParams(&opts, metav1.ParameterCodec).Body(data).Do(ctx))
}

// Delete deletes the object called name.
func (o Objects[T, L]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	// What client-go's typed clients send: the options in the kind's group
	// version (a type registered in several is ambiguous to the encoder).
	opts.TypeMeta = metav1.TypeMeta{APIVersion: o.kind.groupVersion().String(), Kind: "DeleteOptions"}
	body, err := json.Marshal(&opts)
	if err != nil {
		return err
	}
	return o.request("DELETE", name).SetHeader("Content-Type", runtime.ContentTypeJSON).Body(body).Do(ctx).Error()
}

func (o Objects[T, L]) into(res rest.Result) (T, error) {
	obj := newOf[T]()
	if err := res.Into(obj); err != nil {
		var zero T
		return zero, err
	}
	return obj, nil
}

// ListMeta lists only the metadata of the objects that opts select (the
// server's PartialObjectMetadataList): names, labels and annotations
// without the objects' data.
func (o Objects[T, L]) ListMeta(ctx context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	raw, err := o.request("GET", "").VersionedParams(&opts, metav1.ParameterCodec).
		SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").Do(ctx).Raw()
	if err != nil {
		// The server's Status (a 403 naming the user, verb and resource), which the
		// client cannot decode with this Accept and reports as "unknown".
		var st metav1.Status
		if json.Unmarshal(raw, &st) == nil && st.Kind == "Status" && st.Message != "" {
			return nil, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, err
	}
	var l metav1.PartialObjectMetadataList
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("list of %s metadata: %v", o.kind.Resource, err)
	}
	return &l, nil
}
