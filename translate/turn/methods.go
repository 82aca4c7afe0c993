package turn

import "github.com/pion/stun"

// TURN message types. pion/stun v0.6.1 defines every TURN method
// (stun.MethodAllocate ... stun.MethodConnectionAttempt) but message types only
// for Binding; these complete the set with the classes RFC 8656 and RFC 6062
// use. The comment gives the 16-bit wire value.
var (
	TypeAllocateRequest = stun.NewType(stun.MethodAllocate, stun.ClassRequest)         // 0x0003
	TypeAllocateSuccess = stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse) // 0x0103
	TypeAllocateError   = stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)   // 0x0113

	TypeRefreshRequest = stun.NewType(stun.MethodRefresh, stun.ClassRequest)         // 0x0004
	TypeRefreshSuccess = stun.NewType(stun.MethodRefresh, stun.ClassSuccessResponse) // 0x0104
	TypeRefreshError   = stun.NewType(stun.MethodRefresh, stun.ClassErrorResponse)   // 0x0114

	TypeSendIndication = stun.NewType(stun.MethodSend, stun.ClassIndication) // 0x0016
	TypeDataIndication = stun.NewType(stun.MethodData, stun.ClassIndication) // 0x0017

	TypeCreatePermissionRequest = stun.NewType(stun.MethodCreatePermission, stun.ClassRequest)         // 0x0008
	TypeCreatePermissionSuccess = stun.NewType(stun.MethodCreatePermission, stun.ClassSuccessResponse) // 0x0108
	TypeCreatePermissionError   = stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse)   // 0x0118

	TypeChannelBindRequest = stun.NewType(stun.MethodChannelBind, stun.ClassRequest)         // 0x0009
	TypeChannelBindSuccess = stun.NewType(stun.MethodChannelBind, stun.ClassSuccessResponse) // 0x0109
	TypeChannelBindError   = stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse)   // 0x0119

	TypeConnectRequest = stun.NewType(stun.MethodConnect, stun.ClassRequest)         // 0x000a
	TypeConnectSuccess = stun.NewType(stun.MethodConnect, stun.ClassSuccessResponse) // 0x010a
	TypeConnectError   = stun.NewType(stun.MethodConnect, stun.ClassErrorResponse)   // 0x011a

	TypeConnectionBindRequest = stun.NewType(stun.MethodConnectionBind, stun.ClassRequest)         // 0x000b
	TypeConnectionBindSuccess = stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse) // 0x010b
	TypeConnectionBindError   = stun.NewType(stun.MethodConnectionBind, stun.ClassErrorResponse)   // 0x011b

	TypeConnectionAttemptIndication = stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication) // 0x001c
)

// Action says what a TURN server does with a decoded STUN message (turn.md
// §1.3 and §4.2).
type Action uint8

// Actions.
const (
	// ActionDrop: drop silently (responses, indications other than Send,
	// Data indications from clients).
	ActionDrop Action = iota
	// ActionBadRequest: answer 400 (a request with an unknown method, or a
	// Send, Data or ConnectionAttempt sent as a request).
	ActionBadRequest
	// ActionBinding: answer a plain STUN Binding success, unauthenticated.
	ActionBinding
	// ActionRequest: authenticate, then dispatch on the method (Allocate,
	// Refresh, CreatePermission, ChannelBind, Connect, ConnectionBind).
	ActionRequest
	// ActionSend: a Send indication; never answered.
	ActionSend
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionDrop:
		return "drop"
	case ActionBadRequest:
		return "bad request"
	case ActionBinding:
		return "binding"
	case ActionRequest:
		return "request"
	case ActionSend:
		return "send"
	}
	return "unknown"
}

// Dispatch classifies a message type as a TURN server must (turn.md §1.3):
// TURN requests are authenticated and dispatched, Binding requests answered,
// Send indications relayed, unknown or misplaced requests answered with 400,
// and everything else dropped.
func Dispatch(t stun.MessageType) Action {
	switch t.Class {
	case stun.ClassRequest:
		switch t.Method {
		case stun.MethodBinding:
			return ActionBinding
		case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission,
			stun.MethodChannelBind, stun.MethodConnect, stun.MethodConnectionBind:
			return ActionRequest
		}
		return ActionBadRequest
	case stun.ClassIndication:
		if t.Method == stun.MethodSend {
			return ActionSend
		}
	}
	return ActionDrop
}

// ResponseType returns the success or error response type for a request type.
func ResponseType(req stun.MessageType, success bool) stun.MessageType {
	if success {
		return stun.NewType(req.Method, stun.ClassSuccessResponse)
	}
	return stun.NewType(req.Method, stun.ClassErrorResponse)
}
