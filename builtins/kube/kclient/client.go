// Package kclient is mno's Kubernetes API client: client-go's REST client
// (transport, TLS, authentication, rate limits, warnings, watches) with a
// small typed helper per resource mno uses, instead of client-go's generated
// clientset. The clientset links in a typed client for every API group and
// registers all of them in a global scheme at package init — tens of
// milliseconds and most of an 87 MB binary on every start of mno, though a
// run talks to four resources.
//
// A resource is a [Kind] value (its API group, version, plural name and
// scope, with its Go type and list type from k8s.io/api) listed in kinds.go;
// [For] (or a one-line accessor such as [Client.ConfigMaps]) gives its
// [Objects], whose methods have the signatures of client-go's typed clients:
//
//	cms := c.ConfigMaps("kube-system")
//	cm, err := cms.Get(ctx, "cluster-info", metav1.GetOptions{})
//	if apierrors.IsNotFound(err) { … }
//
// Adding a resource takes three lines in kinds.go: the Kind, its entry in
// the kinds list (which registers its types for encoding and watch
// decoding), and, if wanted, an accessor. Requests the helpers do not cover
// (a subresource, a raw path) go through [Client.REST].
package kclient

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Client talks to one API server.
type Client struct {
	rest *rest.RESTClient
}

// New returns a client for cfg (host, TLS, credentials, Dial, QPS, timeout,
// user agent and warning handler are used as they are). It sends and accepts
// JSON only.
func New(cfg *rest.Config) (*Client, error) {
	rc := rest.CopyConfig(cfg)
	rc.APIPath = ""
	rc.GroupVersion = &schema.GroupVersion{}
	rc.ContentType = runtime.ContentTypeJSON
	rc.AcceptContentTypes = runtime.ContentTypeJSON
	rc.NegotiatedSerializer = serializer.NewCodecFactory(newScheme()).WithoutConversion()
	r, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, err
	}
	return &Client{rest: r}, nil
}

// REST returns the underlying REST client, for requests no helper covers.
// Paths are absolute: .AbsPath("/api", "v1") or .AbsPath("/apis", group, version).
func (c *Client) REST() rest.Interface { return c.rest }

// ServerVersion asks the server for /version: the cheapest request that
// proves it answers and accepts the credentials.
func (c *Client) ServerVersion(ctx context.Context) ([]byte, error) {
	return c.rest.Get().AbsPath("/version").Do(ctx).Raw()
}

// newScheme registers the types of every kind in kinds, with the metav1
// types (Status, WatchEvent, options) in each group version: what the REST
// client needs to encode request bodies, to decode watch events, and to turn
// a failure's Status into an error that apierrors recognises.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	seen := map[schema.GroupVersion]bool{}
	for _, k := range kinds {
		gv := k.groupVersion()
		k.register(s)
		if !seen[gv] {
			seen[gv] = true
			metav1.AddToGroupVersion(s, gv)
		}
	}
	return s
}

// registrar is a Kind as the scheme sees it.
type registrar interface {
	groupVersion() schema.GroupVersion
	register(s *runtime.Scheme)
}
