package engine_test

import (
	"path/filepath"
	"testing"

	"github.com/journeyretry/journeyretry/storage"
)

func engineStore(t *testing.T) storage.Config {
	return storage.Config{DSN: filepath.Join(t.TempDir(), "runs.db")}
}
