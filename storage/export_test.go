package storage

import "github.com/uptrace/bun"

// ReadDB is the pool s reads through, for tests that watch its queries.
func ReadDB(s *Store) *bun.DB { return s.rdb }

// UnknownStatus is the condition the count of runs of an unknown status
// and its index share.
const UnknownStatus = unknownStatus
