package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/governance"
)

// approvalTimeout bounds how long a call waits for its user's answer.
const approvalTimeout = 5 * time.Minute

// elicitApprover asks the client's user to approve a call a
// require_approval rule holds, with an elicitation form of one boolean (MCP
// 2025-11-25, "Elicitation"). Clients that did not declare the elicitation
// capability, and 2026-07-28 clients (which take no server-initiated
// requests), are not asked: their calls stay refused.
type elicitApprover struct{ srv *server.MCPServer }

var approvalSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"approve": map[string]any{"type": "boolean", "title": "Approve", "description": "Allow this one call"},
	},
	"required": []string{"approve"},
}

func (a *elicitApprover) Approve(ctx context.Context, r governance.ApprovalRequest) (governance.ApprovalAnswer, error) {
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok || s.GetClientCapabilities().Elicitation == nil {
		return governance.ApprovalAnswer{}, governance.ErrApprovalUnsupported
	}
	what := r.Tool
	if r.Upstream != "" {
		what += " (upstream " + r.Upstream + ")"
	}
	req := mcp.ElicitationRequest{Params: mcp.ElicitationParams{
		Message:         fmt.Sprintf("agentmesh: a policy asks for your approval before %s runs with %s.\n%s", what, r.Params, r.Reason),
		RequestedSchema: approvalSchema,
	}}
	ctx, cancel := context.WithTimeout(ctx, approvalTimeout)
	defer cancel()
	res, err := a.srv.RequestElicitation(ctx, req)
	switch {
	case errors.Is(err, server.ErrElicitationNotSupported), errors.Is(err, server.ErrServerInitiatedRequestUnsupported):
		return governance.ApprovalAnswer{}, governance.ErrApprovalUnsupported
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return governance.ApprovalAnswer{}, fmt.Errorf("no answer within %s", approvalTimeout)
	case err != nil:
		return governance.ApprovalAnswer{}, err
	}
	approved := false
	if res.Action == mcp.ElicitationResponseActionAccept {
		if content, ok := res.Content.(map[string]any); ok {
			approved, _ = content["approve"].(bool)
		}
	}
	action := string(res.Action)
	if res.Action == mcp.ElicitationResponseActionAccept && !approved {
		action = "accept, without approving"
	}
	return governance.ApprovalAnswer{Approved: approved, Action: action}, nil
}
