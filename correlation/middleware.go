package correlation

import "net/http"

// Middleware returns a handler that gives every request a correlation id and
// then calls next.
//
// The id is the request's [Header] value when that is [Valid]; otherwise
// (absent, empty, too long, bad characters) a fresh [New] id is used. The id
// is stored in the request context (read it with [ID] or [FromContext]) and
// set as the [Header] of the response before next runs, so it is present even
// if next writes nothing.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !Valid(id) {
			id = New()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(WithID(r.Context(), id)))
	})
}
