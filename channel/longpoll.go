package channel

import "net/http"

// LongPollOptions configure the LongPoll transport (Phoenix's /longpoll).
// A nil Options.LongPoll leaves it off, as in Phoenix, and /longpoll
// answers 404.
type LongPollOptions struct{}

// serveLongPoll serves <mount>/longpoll.
func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
