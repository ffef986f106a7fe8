// Package ui decides how agentmesh talks to people and to scripts: styled
// tables on a terminal, plain text when piped, JSON on request, colour only
// when stdout is a terminal and NO_COLOR is unset (https://no-color.org).
// Commands write through an IO so tests capture everything without a
// terminal.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"golang.org/x/term"
)

// Format is an output format.
type Format string

// Output formats. Text is what `table` degrades to when stdout is not a
// terminal: the same rows, without borders or colour.
const (
	Table Format = "table"
	JSON  Format = "json"
	Text  Format = "text"
)

// IO is a command's standard streams and what they are connected to.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// InTTY and OutTTY say whether stdin/stdout are terminals.
	InTTY, OutTTY bool
	// Color enables styling (OutTTY and NO_COLOR unset).
	Color bool
}

// System returns the process's streams.
func System() *IO {
	outTTY := term.IsTerminal(int(os.Stdout.Fd()))
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IO{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: outTTY,
		Color:  outTTY && !noColor,
	}
}

// ParseFormat resolves --output: "" means table on a terminal and text
// otherwise; "table" also degrades to text when stdout is not a terminal.
func (o *IO) ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", Table:
		if o.OutTTY {
			return Table, nil
		}
		return Text, nil
	case JSON, Text:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown output format %q: want table, text or json", s)
}

// WriteJSON writes v as indented JSON and a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Field is one labelled value in a record view.
type Field struct {
	Label string
	Value string
	// Attention marks a value the reader should act on.
	Attention bool
}

// Record prints labelled values aligned in two columns; with colour, labels
// are dim and values needing attention stand out.
func (o *IO) Record(title string, fields []Field) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.Label))
	}
	label := lipgloss.NewStyle().Faint(true)
	warn := lipgloss.NewStyle().Foreground(lipgloss.Color("3")).Bold(true)
	head := lipgloss.NewStyle().Bold(true)
	if title != "" {
		if o.Color {
			title = head.Render(title)
		}
		fmt.Fprintln(o.Out, title)
	}
	for _, f := range fields {
		l := fmt.Sprintf("%-*s", width, f.Label)
		v := f.Value
		if o.Color {
			l = label.Render(l)
			if f.Attention {
				v = warn.Render(v)
			}
		} else if f.Attention {
			v += "  (!)"
		}
		fmt.Fprintf(o.Out, "  %s  %s\n", l, v)
	}
}

// Rows prints a table: bordered and styled in table format, tab-free
// aligned columns in text format.
func (o *IO) Rows(format Format, headers []string, rows [][]string) {
	if format == Table {
		t := table.New().Headers(headers...).Rows(rows...).
			Border(lipgloss.RoundedBorder()).
			StyleFunc(func(row, col int) lipgloss.Style {
				s := lipgloss.NewStyle().Padding(0, 1)
				if row == table.HeaderRow && o.Color {
					s = s.Bold(true)
				}
				return s
			})
		fmt.Fprintln(o.Out, t.Render())
		return
	}
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	line := func(cells []string) {
		parts := make([]string, len(cells))
		for i, c := range cells {
			if i == len(cells)-1 {
				parts[i] = c
			} else {
				parts[i] = fmt.Sprintf("%-*s", widths[i], c)
			}
		}
		fmt.Fprintln(o.Out, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
	line(upper(headers))
	for _, r := range rows {
		line(r)
	}
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, h := range s {
		out[i] = strings.ToUpper(h)
	}
	return out
}

// Success prints a line with a check mark to stderr (human progress output
// never goes to stdout, which scripts and `serve` keep for data).
func (o *IO) Success(format string, args ...any) {
	mark := "✓"
	if o.Color {
		mark = lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Render(mark)
	}
	fmt.Fprintf(o.Err, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

// Hint prints an indented hint to stderr.
func (o *IO) Hint(format string, args ...any) {
	fmt.Fprintf(o.Err, "  %s\n", fmt.Sprintf(format, args...))
}
