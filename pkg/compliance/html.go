package compliance

import (
	"html/template"
	"io"
	"strings"
)

// The HTML report is one self-contained page: inline CSS, no scripts, no
// external assets, readable in any browser and printable.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"name":    FrameworkName,
	"status":  StatusText,
	"stamp":   stamp,
	"seqs":    seqRange,
	"by":      byText,
	"cited":   citedText,
	"summary": summaryOf,
	"check": func(r *Report) template.HTML {
		// howToCheck's text is ours; only its code spans are markup.
		s := template.HTMLEscapeString(howToCheck(r, "\x01", "\x02"))
		s = strings.NewReplacer("\x01", "<code>", "\x02", "</code>", "`", "").Replace(s)
		lines := strings.Split(strings.TrimPrefix(s, "## How to check this report\n\n"), "\n")
		var b strings.Builder
		b.WriteString("<ol>")
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				b.WriteString("<li>" + l[strings.Index(l, " ")+1:] + "</li>")
			}
		}
		b.WriteString("</ol>")
		return template.HTML(b.String())
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{name .Framework}} compliance report — {{.Log.Origin}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #1b1f24; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.pass { color: #116329; font-weight: 600; }
.fail, .no-evidence { color: #a40e26; font-weight: 600; }
.na { color: #57606a; }
.verdict { font-size: 1.1em; padding: .5em .8em; border-radius: 6px; display: inline-block; }
.ok { background: #dafbe1; } .notok { background: #ffebe9; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; }
</style>
</head>
<body>
<h1>{{name .Framework}} compliance report</h1>
<dl>
<dt>Log</dt><dd><code>{{.Log.Origin}}</code>, {{.Log.Size}} entries</dd>
{{with .Log.Checkpoint}}<dt>Latest checkpoint</dt><dd>size {{.Size}}, root <code>{{.Root}}</code>, {{stamp .Time}}</dd>{{end}}
<dt>Period</dt><dd>{{stamp .Period.Since}} to {{stamp .Period.Until}}: {{.Period.Entries}} entries (seqs {{seqs .Period.FirstSeq .Period.LastSeq}})</dd>
{{with .Log.Retention}}<dt>Audit retention</dt><dd>{{.}} (agentmesh never deletes entries)</dd>{{end}}
{{range .Log.VerifierKeys}}<dt>Verifier key</dt><dd><code>{{.}}</code></dd>{{end}}
<dt>Generated</dt><dd>{{stamp .Generated}}</dd>
</dl>
<p class="verdict {{if .OK}}ok{{else}}notok{{end}}">{{if .OK}}OK{{else}}NOT OK{{end}}: {{index .Summary "pass"}} pass, {{index .Summary "fail"}} fail, {{index .Summary "no-evidence"}} no evidence, {{index .Summary "n/a"}} not applicable</p>
<table id="controls" class="controls">
<thead><tr><th>control</th><th>title</th><th>status</th><th>evidence</th></tr></thead>
<tbody>
{{range .Controls}}<tr data-control="{{.ID}}" data-status="{{.Status}}"><td><a href="#{{.ID}}">{{.ID}}</a></td><td>{{.Title}}</td><td class="{{if eq .Status "n/a"}}na{{else}}{{.Status}}{{end}}">{{status .Status}}</td><td>{{summary .}}</td></tr>
{{end}}</tbody>
</table>
{{range .Controls}}
<h2 id="{{.ID}}">{{.ID}} — {{.Title}}</h2>
<p>{{.Ref}}. {{.Objective}}</p>
<p>Status: <span class="{{if eq .Status "n/a"}}na{{else}}{{.Status}}{{end}}">{{status .Status}}</span>{{with .Reason}} — {{.}}{{end}}</p>
{{if .Evidence}}<table class="evidence">
<thead><tr><th>evidence</th><th>selects</th><th>required</th><th>entries</th><th>seqs</th><th>by</th><th>cited seq→checkpoint</th><th>before the period</th></tr></thead>
<tbody>
{{range .Evidence}}<tr><td>{{.ID}}: {{.Title}}</td><td>{{.Match}}</td><td>{{if .Required}}yes{{else}}no{{end}}</td><td>{{.Count}}</td><td>{{seqs .FirstSeq .LastSeq}}</td><td>{{by .By}}</td><td>{{cited .Cited}}</td><td>{{with .Baseline}}{{.Seq}}→{{.Checkpoint}} ({{.Action}}, {{stamp .Timestamp}}){{end}}</td></tr>
{{end}}</tbody>
</table>{{end}}
{{if .Verifications}}<table class="verifications">
<thead><tr><th>verified at</th><th>mode</th><th>size</th><th>root</th><th>ok</th><th>signed</th><th>checkpoint root</th><th>accepted</th></tr></thead>
<tbody>
{{range .Verifications}}<tr><td>{{stamp .At}}</td><td>{{.Mode}}</td><td>{{.Size}}</td><td><code>{{.Root}}</code></td><td>{{.OK}}</td><td>{{.Signed}}</td><td><code>{{.CheckpointRoot}}</code></td><td>{{if .Accepted}}yes{{else}}no: {{.Why}}{{end}}</td></tr>
{{end}}</tbody>
</table>{{end}}
{{end}}
{{if .Checkpoints}}<h2 id="checkpoints">Signed checkpoints cited</h2>
<table class="checkpoints">
<thead><tr><th>size</th><th>root</th><th>time</th></tr></thead>
<tbody>
{{range .Checkpoints}}<tr><td>{{.Size}}</td><td><code>{{.Root}}</code></td><td>{{stamp .Time}}</td></tr>
{{end}}</tbody>
</table>{{end}}
<h2 id="check">How to check this report</h2>
{{check .}}
</body>
</html>
`))

func (r *Report) writeHTML(w io.Writer) error { return htmlReport.Execute(w, r) }
