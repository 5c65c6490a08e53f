//go:build tools

// Package build pins the LiveKit SIP service for the lab's build (see go.mod).
package build

import _ "github.com/livekit/sip/cmd/livekit-sip"
