package correlation

import "context"

// ctxKey is the unexported context key type, so no other package can collide
// with (or overwrite) the id except through [WithID].
type ctxKey struct{}

// WithID returns a copy of ctx that carries id. An empty id is stored as
// given; [FromContext] then reports it as absent.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the id carried by ctx and whether there is a non-empty
// one.
func FromContext(ctx context.Context) (string, bool) {
	if ctx == nil {
		return "", false
	}
	id, _ := ctx.Value(ctxKey{}).(string)
	return id, id != ""
}

// ID returns the id carried by ctx, or "" when there is none.
func ID(ctx context.Context) string {
	id, _ := FromContext(ctx)
	return id
}
