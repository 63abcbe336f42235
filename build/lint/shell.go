package lint

import (
	"path"
	"strings"
)

// command is one simple command of a RUN script: its name, its arguments with quotes removed, and the
// VAR=value assignments written before it.
type command struct {
	name   string
	args   []string
	assign []string
}

// script is what the rules need to know about a RUN shell script.
type script struct {
	cmds  []command
	pipe  bool // a | between two commands (not ||)
	empty bool
}

// shellKeywords start a compound command; the simple command that follows them is what the rules look at.
var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "!": true, "{": true, "}": true, "time": true, "exec": true,
}

// parseShell splits a POSIX shell script into simple commands. It is not a full shell parser: it knows
// quotes, backslash escapes and line continuations, the operators && || ; | & and newlines, subshell
// parentheses, redirections (whose targets are not arguments), comments, and keeps $(…) and `…` inside the
// word they appear in. That is enough to find which programs a RUN calls and with which arguments.
func parseShell(src string) script {
	var (
		s       script
		cur     command
		word    strings.Builder
		inWord  bool
		quoted  bool // the current word had quotes, so an empty word still counts
		skipArg bool // the next word is a redirection target
	)
	endWord := func() {
		if !inWord {
			return
		}
		w := word.String()
		word.Reset()
		inWord, quoted = false, false
		switch {
		case skipArg:
			skipArg = false
		case cur.name == "" && !quoted && isAssignment(w):
			cur.assign = append(cur.assign, w)
		case cur.name == "" && shellKeywords[w]:
		case cur.name == "":
			cur.name = w
		default:
			cur.args = append(cur.args, w)
		}
	}
	endCmd := func() {
		endWord()
		if cur.name != "" {
			s.cmds = append(s.cmds, cur)
		}
		cur = command{}
		skipArg = false
	}

	r := []rune(src)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '\\':
			if i+1 < len(r) && r[i+1] == '\n' { // line continuation
				i++
				continue
			}
			if i+1 < len(r) {
				i++
				word.WriteRune(r[i])
			}
			inWord = true
		case c == '\'':
			j := i + 1
			for j < len(r) && r[j] != '\'' {
				word.WriteRune(r[j])
				j++
			}
			i = j
			inWord, quoted = true, true
		case c == '"':
			j := i + 1
			for ; j < len(r) && r[j] != '"'; j++ {
				if r[j] == '\\' && j+1 < len(r) && strings.ContainsRune("\"\\$`\n", r[j+1]) {
					j++
					if r[j] == '\n' {
						continue
					}
				}
				word.WriteRune(r[j])
			}
			i = j
			inWord, quoted = true, true
		case c == '$' && i+1 < len(r) && r[i+1] == '(':
			// Command substitution or arithmetic: keep it in the word, up to the matching parenthesis.
			depth := 0
			j := i
			for ; j < len(r); j++ {
				word.WriteRune(r[j])
				if r[j] == '(' {
					depth++
				} else if r[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			i = j
			inWord = true
		case c == '`':
			j := i
			word.WriteRune(c)
			for j++; j < len(r) && r[j] != '`'; j++ {
				word.WriteRune(r[j])
			}
			if j < len(r) {
				word.WriteRune('`')
			}
			i = j
			inWord = true
		case c == '#' && !inWord:
			for i < len(r) && r[i] != '\n' {
				i++
			}
			endCmd()
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case c == '\n' || c == ';' || c == '(' || c == ')':
			endCmd()
		case c == '&' || c == '|':
			double := i+1 < len(r) && r[i+1] == c
			if c == '&' && !double && i > 0 && (r[i-1] == '>' || r[i-1] == '<') {
				// 2>&1: part of a redirection.
				inWord = true
				continue
			}
			if c == '|' && !double {
				s.pipe = true
			}
			if double {
				i++
			}
			endCmd()
		case c == '>' || c == '<':
			// A number written right before the operator is a file descriptor, not an argument.
			if inWord && isDigits(word.String()) {
				word.Reset()
				inWord = false
			}
			endWord()
			for i+1 < len(r) && (r[i+1] == '>' || r[i+1] == '<' || r[i+1] == '&' || r[i+1] == '|') {
				i++
			}
			if i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9' && r[i] == '&' { // >&2
				for i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9' {
					i++
				}
				continue
			}
			skipArg = true
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	endCmd()
	s.empty = len(s.cmds) == 0
	return s
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// base is the program name without its directory: /usr/bin/apt-get is apt-get.
func (c command) base() string { return path.Base(c.name) }

// hasFlag reports whether the command has one of the flags, as --name, --name=value or -n.
func (c command) hasFlag(names ...string) bool {
	for _, a := range c.args {
		for _, n := range names {
			if a == n || strings.HasPrefix(n, "--") && strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

// operands are the arguments that are not flags, skipping the value of each flag in valued (which takes
// the next word unless written --flag=value). Short flags given together (-yq) are flags too.
func (c command) operands(valued ...string) []string {
	var out []string
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		for _, v := range valued {
			if a == v {
				i++
				break
			}
		}
	}
	return out
}

// subcommand returns the arguments after the first operand if that operand is one of names (apt-get
// install …, npm i …), skipping flags with values.
func (c command) subcommand(valued []string, names ...string) ([]string, bool) {
	ops := c.operands(valued...)
	if len(ops) == 0 {
		return nil, false
	}
	for _, n := range names {
		if ops[0] == n {
			return ops[1:], true
		}
	}
	return nil, false
}
