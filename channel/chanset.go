package channel

// chanSet is a connection's joined channels by topic: a slice while they
// are few (most connections join one or two channels), a map past
// chanSetFew. A map costs some 250 bytes for a single entry; the slice, a
// pointer per channel.
type chanSet struct {
	few  []*proc
	many map[string]*proc
}

const chanSetFew = 8

func (s *chanSet) get(topic string) *proc {
	if s.many != nil {
		return s.many[topic]
	}
	for _, p := range s.few {
		if p.topic == topic {
			return p
		}
	}
	return nil
}

// set registers p under its topic, replacing the channel of that topic.
func (s *chanSet) set(p *proc) {
	if s.many != nil {
		s.many[p.topic] = p
		return
	}
	for i, q := range s.few {
		if q.topic == p.topic {
			s.few[i] = p
			return
		}
	}
	if len(s.few) < chanSetFew {
		s.few = append(s.few, p)
		return
	}
	s.many = make(map[string]*proc, 2*chanSetFew)
	for _, q := range s.few {
		s.many[q.topic] = q
	}
	s.many[p.topic] = p
	s.few = nil
}

// del removes the channel of topic.
func (s *chanSet) del(topic string) {
	if s.many != nil {
		delete(s.many, topic)
		return
	}
	for i, p := range s.few {
		if p.topic == topic {
			last := len(s.few) - 1
			s.few[i] = s.few[last]
			s.few[last] = nil
			s.few = s.few[:last]
			return
		}
	}
}

func (s *chanSet) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// take returns every channel and empties the set.
func (s *chanSet) take() []*proc {
	procs := make([]*proc, 0, s.len())
	if s.many != nil {
		for _, p := range s.many {
			procs = append(procs, p)
		}
	}
	procs = append(procs, s.few...)
	*s = chanSet{}
	return procs
}
