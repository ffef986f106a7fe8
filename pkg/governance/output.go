package governance

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// outputText is what output conditions and the size cap see: every text
// content block, every embedded text resource, and the structured content
// as JSON, joined by newlines. Binary blocks count toward the size only.
func outputText(res *mcp.CallToolResult) (string, int) {
	var b strings.Builder
	size := 0
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	for _, c := range res.Content {
		switch v := c.(type) {
		case mcp.TextContent:
			add(v.Text)
		case *mcp.TextContent:
			add(v.Text)
		case mcp.EmbeddedResource:
			if t, ok := v.Resource.(mcp.TextResourceContents); ok {
				add(t.Text)
			} else if bl, ok := v.Resource.(mcp.BlobResourceContents); ok {
				size += len(bl.Blob)
			}
		case mcp.ImageContent:
			size += len(v.Data)
		case mcp.AudioContent:
			size += len(v.Data)
		case *mcp.ImageContent:
			size += len(v.Data)
		case *mcp.AudioContent:
			size += len(v.Data)
		default:
			// Any other block (a pointer variant, a resource link, a type
			// added later) is seen as its JSON, so no text escapes the
			// output rules unseen.
			if raw, err := json.Marshal(c); err == nil {
				add(string(raw))
			}
		}
	}
	if res.StructuredContent != nil {
		if raw, err := json.Marshal(res.StructuredContent); err == nil {
			add(string(raw))
		}
	}
	return b.String(), size + b.Len()
}

// redactResult returns a copy of res with every text block, embedded text
// resource and the structured content redacted, and the detector rules
// that fired. An error means something could not be scanned: the caller
// withholds the output.
func (p *Pipeline) redactResult(ctx context.Context, res *mcp.CallToolResult) (*mcp.CallToolResult, []string, error) {
	if p.opts.Redactor == nil {
		return res, nil, nil
	}
	out := *res
	out.Content = make([]mcp.Content, len(res.Content))
	rules := map[string]bool{}
	text := func(s string) (string, error) {
		r, err := p.opts.Redactor.RedactText(ctx, s)
		if err != nil {
			return "", err
		}
		for _, f := range r.Findings {
			rules[f.RuleID] = true
		}
		return r.Text, nil
	}
	for i, c := range res.Content {
		switch v := c.(type) {
		case mcp.TextContent:
			t, err := text(v.Text)
			if err != nil {
				return nil, nil, err
			}
			v.Text = t
			out.Content[i] = v
		case *mcp.TextContent:
			t, err := text(v.Text)
			if err != nil {
				return nil, nil, err
			}
			cp := *v
			cp.Text = t
			out.Content[i] = cp
		case mcp.EmbeddedResource:
			if tr, ok := v.Resource.(mcp.TextResourceContents); ok {
				t, err := text(tr.Text)
				if err != nil {
					return nil, nil, err
				}
				tr.Text = t
				v.Resource = tr
			}
			out.Content[i] = v
		case mcp.ImageContent, mcp.AudioContent, *mcp.ImageContent, *mcp.AudioContent:
			out.Content[i] = c
		default:
			// Scan any other block as JSON; if it holds a secret, replace
			// it by its redacted JSON as text (never pass it through).
			raw, err := json.Marshal(c)
			if err != nil {
				return nil, nil, err
			}
			r, err := p.opts.Redactor.RedactText(ctx, string(raw))
			if err != nil {
				return nil, nil, err
			}
			if len(r.Findings) == 0 {
				out.Content[i] = c
				continue
			}
			for _, f := range r.Findings {
				rules[f.RuleID] = true
			}
			out.Content[i] = mcp.NewTextContent(r.Text)
		}
	}
	switch {
	case len(res.RawStructuredContent) > 0:
		// A result decoded from an upstream keeps the bytes it came with,
		// and mcp-go encodes those rather than StructuredContent: redact
		// the bytes themselves (keeping key order and numbers), and the
		// decoded value with them.
		red, findings, err := p.opts.Redactor.RedactJSON(ctx, res.RawStructuredContent)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range findings {
			rules[f.RuleID] = true
		}
		out.RawStructuredContent = red
		out.StructuredContent = nil
		if err := json.Unmarshal(red, &out.StructuredContent); err != nil {
			return nil, nil, err
		}
	case res.StructuredContent != nil:
		raw, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return nil, nil, err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, nil, err
		}
		red, findings, err := p.opts.Redactor.RedactValue(ctx, v)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range findings {
			rules[f.RuleID] = true
		}
		out.StructuredContent = red
	}
	names := make([]string, 0, len(rules))
	for r := range rules {
		names = append(names, r)
	}
	sort.Strings(names)
	return &out, names, nil
}
