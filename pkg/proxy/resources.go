package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// refreshResources exposes the upstream's resources and resource templates
// under their own URIs; reads are governed like tool calls.
func (p *Proxy) refreshResources(ctx context.Context, u *upstream, c *conn) error {
	raws, err := listAll(ctx, c, "resources/list", "resources")
	if err != nil {
		return err
	}
	var add []server.ServerResource
	listed := map[string]bool{}
	p.mu.Lock()
	for _, raw := range raws {
		var r mcp.Resource
		if err := json.Unmarshal(raw, &r); err != nil || r.URI == "" {
			p.warnf("upstream %s: skipping a malformed resource: %s", u.cfg.Name, truncate(string(raw), 200))
			continue
		}
		if owner, ok := p.resources[r.URI]; ok && owner != u {
			p.warnf("upstream %s: resource %s is already served by upstream %s; not exposed", u.cfg.Name, r.URI, owner.cfg.Name)
			continue
		}
		p.resources[r.URI] = u
		p.rawResources[r.URI] = raw
		listed[r.URI] = true
		add = append(add, server.ServerResource{Resource: r, Handler: p.readResource(u)})
	}
	gone := vanished(u.resourceURIs, listed)
	for _, uri := range gone {
		delete(p.resources, uri)
		delete(p.rawResources, uri)
	}
	u.resourceURIs = listed
	p.mu.Unlock()
	if len(gone) > 0 {
		p.srv.DeleteResources(gone...)
	}
	if len(add) > 0 {
		p.srv.AddResources(add...)
	}
	traws, err := listAll(ctx, c, "resources/templates/list", "resourceTemplates")
	if err != nil {
		var re *rpcError
		if errors.As(err, &re) && re.Code == mcp.METHOD_NOT_FOUND {
			return nil
		}
		return err
	}
	var tadd []server.ServerResourceTemplate
	p.mu.Lock()
	for _, raw := range traws {
		var t mcp.ResourceTemplate
		if err := json.Unmarshal(raw, &t); err != nil || t.URITemplate == nil {
			p.warnf("upstream %s: skipping a malformed resource template: %s", u.cfg.Name, truncate(string(raw), 200))
			continue
		}
		key := t.URITemplate.Raw()
		if owner, ok := p.templates[key]; ok && owner != u {
			p.warnf("upstream %s: resource template %s is already served by upstream %s; not exposed", u.cfg.Name, key, owner.cfg.Name)
			continue
		}
		p.templates[key] = u
		p.rawTemplates[key] = raw
		p.templateURIs[key] = t.URITemplate
		tadd = append(tadd, server.ServerResourceTemplate{Template: t, Handler: server.ResourceTemplateHandlerFunc(p.readResource(u))})
	}
	p.mu.Unlock()
	if len(tadd) > 0 {
		p.srv.AddResourceTemplates(tadd...)
	}
	return nil
}

// readResource governs one resources/read: method "resources/read", tool
// "resources/read", uri set, access read of mcp:<upstream>/<escaped uri>.
// The contents pass the same output rules and redaction as tool output;
// a refusal becomes a JSON-RPC error carrying the reason.
func (p *Proxy) readResource(u *upstream) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		uri := req.Params.URI
		call := governance.Call{
			Tool: "resources/read", Args: map[string]any{"uri": uri}, Client: governance.ClientName(ctx),
			Upstream: u.cfg.Name, Method: "resources/read", URI: uri,
			Access: func(map[string]any) (tools.Access, error) {
				return tools.Access{Kind: scope.MCP, Target: resourceTarget(u.cfg.Name, uri), Action: scope.Read}, nil
			},
		}
		res, err := p.opts.Pipeline.Run(ctx, call, func(ctx context.Context) (*mcp.CallToolResult, error) {
			defer u.begin(ctx, "resources/read")()
			raw, err := u.call(ctx, "resources/read", map[string]any{"uri": uri})
			if err != nil {
				return nil, err
			}
			rr, err := mcp.ParseReadResourceResult(&raw)
			if err != nil {
				return nil, errors.New("upstream " + u.cfg.Name + " sent a malformed resources/read result: " + err.Error())
			}
			out := &mcp.CallToolResult{}
			for _, c := range rr.Contents {
				out.Content = append(out.Content, mcp.NewEmbeddedResource(c))
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		if res.IsError {
			return nil, errors.New(resultText(res))
		}
		var contents []mcp.ResourceContents
		for _, c := range res.Content {
			switch v := c.(type) {
			case mcp.EmbeddedResource:
				contents = append(contents, v.Resource)
			default:
				// Redaction replaced a block by text, or withheld it.
				contents = append(contents, mcp.TextResourceContents{URI: uri, MIMEType: "text/plain", Text: contentText(c)})
			}
		}
		return contents, nil
	}
}

// refreshPrompts exposes the upstream's prompts under the tool prefix.
func (p *Proxy) refreshPrompts(ctx context.Context, u *upstream, c *conn) error {
	raws, err := listAll(ctx, c, "prompts/list", "prompts")
	if err != nil {
		return err
	}
	var add []server.ServerPrompt
	listed := map[string]bool{}
	p.mu.Lock()
	for _, raw := range raws {
		var pr mcp.Prompt
		if err := json.Unmarshal(raw, &pr); err != nil || pr.Name == "" {
			p.warnf("upstream %s: skipping a malformed prompt: %s", u.cfg.Name, truncate(string(raw), 200))
			continue
		}
		name := pr.Name
		pr.Name = u.prefix + name
		if owner, ok := p.prompts[pr.Name]; ok && owner.up != u {
			p.warnf("upstream %s: prompt %s is already served by upstream %s; not exposed", u.cfg.Name, pr.Name, owner.up.cfg.Name)
			continue
		}
		rawP, err := renamed(raw, "name", pr.Name)
		if err != nil {
			p.warnf("upstream %s: skipping a malformed prompt: %v", u.cfg.Name, err)
			continue
		}
		pt := &promptRoute{up: u, name: name, raw: rawP}
		p.prompts[pr.Name] = pt
		listed[pr.Name] = true
		add = append(add, server.ServerPrompt{Prompt: pr, Handler: p.getPrompt(pt, pr.Name)})
	}
	gone := vanished(u.promptNames, listed)
	for _, name := range gone {
		delete(p.prompts, name)
	}
	u.promptNames = listed
	p.mu.Unlock()
	if len(gone) > 0 {
		p.srv.DeletePrompts(gone...)
	}
	if len(add) > 0 {
		p.srv.AddPrompts(add...)
	}
	return nil
}

// getPrompt governs one prompts/get: tool is the exposed prompt name,
// method "prompts/get", access read of mcp:<upstream>/<prompt>. The
// messages pass output rules and redaction.
func (p *Proxy) getPrompt(pt *promptRoute, exposed string) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		args := map[string]any{}
		for k, v := range req.Params.Arguments {
			args[k] = v
		}
		var roles []mcp.Role
		var description string
		call := governance.Call{
			Tool: exposed, Args: args, Client: governance.ClientName(ctx),
			Upstream: pt.up.cfg.Name, UpstreamTool: pt.name, Method: "prompts/get",
			Access: func(map[string]any) (tools.Access, error) {
				return tools.Access{Kind: scope.MCP, Target: pt.up.cfg.Name + "/" + pt.name, Action: scope.Read}, nil
			},
		}
		res, err := p.opts.Pipeline.Run(ctx, call, func(ctx context.Context) (*mcp.CallToolResult, error) {
			params := map[string]any{"name": pt.name}
			if len(req.Params.Arguments) > 0 {
				params["arguments"] = req.Params.Arguments
			}
			defer pt.up.begin(ctx, exposed)()
			raw, err := pt.up.call(ctx, "prompts/get", params)
			if err != nil {
				return nil, err
			}
			gr, err := mcp.ParseGetPromptResult(&raw)
			if err != nil {
				return nil, errors.New("upstream " + pt.up.cfg.Name + " sent a malformed prompts/get result: " + err.Error())
			}
			description = gr.Description
			out := &mcp.CallToolResult{}
			for _, m := range gr.Messages {
				roles = append(roles, m.Role)
				out.Content = append(out.Content, m.Content)
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		if res.IsError {
			return nil, errors.New(resultText(res))
		}
		out := &mcp.GetPromptResult{Description: description}
		for i, c := range res.Content {
			role := mcp.RoleUser
			if i < len(roles) && len(res.Content) == len(roles) {
				role = roles[i]
			}
			out.Messages = append(out.Messages, mcp.PromptMessage{Role: role, Content: c})
		}
		return out, nil
	}
}

// resultText joins the text blocks of a (refusal) result.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, contentText(c))
	}
	return strings.Join(parts, "\n")
}

func contentText(c mcp.Content) string {
	switch v := c.(type) {
	case mcp.TextContent:
		return v.Text
	case *mcp.TextContent:
		return v.Text
	}
	raw, _ := json.Marshal(c)
	return string(raw)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// vanished returns the keys of before that now lacks.
func vanished(before, now map[string]bool) []string {
	var gone []string
	for k := range before {
		if !now[k] {
			gone = append(gone, k)
		}
	}
	return gone
}
