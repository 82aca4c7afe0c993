package turn

import (
	"bytes"
	"testing"

	pionturn "github.com/pion/turn/v2"
)

// TestKeysMatchPionTURN cross-checks the long-term key with pion/turn's.
func TestKeysMatchPionTURN(t *testing.T) {
	if !bytes.Equal(LongTermKey(tvUser, tvRealm, tvPass), pionturn.GenerateAuthKey(tvUser, tvRealm, tvPass)) {
		t.Error("LongTermKey differs from pion/turn's GenerateAuthKey")
	}
	pw := RESTPassword(tvSecret, tvREST)
	if !bytes.Equal(RESTKey(tvREST, tvRealm, tvSecret), pionturn.GenerateAuthKey(tvREST, tvRealm, pw)) {
		t.Error("RESTKey differs")
	}
}
