package authz

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/token"
)

// Shape rules for request fields. What a value MEANS (which roles exist,
// which capabilities they hold) is the policy's business; here we only
// reject what no policy could make sense of. Role names are checked against
// the active bundle's data, never against a list in Go.

const (
	maxLabel   = 200
	maxName    = 200
	maxCapName = 128
	maxCaps    = 256
	maxTools   = 1024
)

var (
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`) // capabilities, actions, tools
	loginRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func validLabel(label string) error {
	if utf8.RuneCountInString(label) > maxLabel {
		return invalid("invalid_label", "label", "label is longer than %d characters", maxLabel)
	}
	if !utf8.ValidString(label) || strings.ContainsFunc(label, isControl) {
		return invalid("invalid_label", "label", "label must be printable UTF-8 text")
	}
	return nil
}

func validName(field, name string) error {
	if utf8.RuneCountInString(name) > maxName {
		return invalid("invalid_"+field, field, "%s is longer than %d characters", field, maxName)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return invalid("invalid_"+field, field, "%s must be printable UTF-8 text", field)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validCapabilities accepts nil (the owner's ceiling) or a list of distinct,
// non-empty capability names.
func validCapabilities(caps *[]string) error {
	if caps == nil {
		return nil
	}
	if len(*caps) > maxCaps {
		return invalid("invalid_capabilities", "capabilities", "at most %d capabilities", maxCaps)
	}
	seen := map[string]bool{}
	for i, c := range *caps {
		if c == "" {
			return invalid("invalid_capabilities", "capabilities", "capabilities[%d] is empty", i)
		}
		if len(c) > maxCapName || !nameRe.MatchString(c) {
			return invalid("invalid_capabilities", "capabilities", "capabilities[%d] %q is not a capability name", i, clip(c))
		}
		if seen[c] {
			return invalid("invalid_capabilities", "capabilities", "capability %q is listed twice", c)
		}
		seen[c] = true
	}
	return nil
}

func validAction(action string) error {
	if action == "" {
		return invalid("invalid_action", "action", "action is required")
	}
	if !nameRe.MatchString(action) {
		return invalid("invalid_action", "action", "action %q is not an action name", clip(action))
	}
	return nil
}

func validTool(tool string) error {
	if tool == "" || !nameRe.MatchString(tool) {
		return invalid("invalid_tool", "tool", "tool %q is not a tool name", clip(tool))
	}
	return nil
}

// ValidToolPolicy checks a tool policy's shape: mode allow or deny and a
// list of distinct tool names.
func ValidToolPolicy(tp *model.ToolPolicy) error {
	if tp == nil {
		return nil
	}
	if tp.Mode != "allow" && tp.Mode != "deny" {
		return invalid("invalid_tool_policy", "tool_policy", "tool_policy.mode must be \"allow\" or \"deny\", not %q", clip(tp.Mode))
	}
	if tp.Tools == nil {
		return invalid("invalid_tool_policy", "tool_policy", "tool_policy.tools must be a list (it may be empty)")
	}
	if len(tp.Tools) > maxTools {
		return invalid("invalid_tool_policy", "tool_policy", "at most %d tools", maxTools)
	}
	for i, t := range tp.Tools {
		if !nameRe.MatchString(t) {
			return invalid("invalid_tool_policy", "tool_policy", "tool_policy.tools[%d] %q is not a tool name", i, clip(t))
		}
	}
	return nil
}

func validLogin(login string) error {
	if !loginRe.MatchString(login) {
		return invalid("invalid_login", "login", "login %q must match %s", clip(login), loginRe.String())
	}
	if allDigits(login) {
		return invalid("invalid_login", "login", "login %q is all digits and would be mistaken for a user id", login)
	}
	return nil
}

// validNewSlug checks a slug for a new agent: the token format's rules, and
// not all digits, so that "<agent>" arguments (a slug or an id) are never
// ambiguous.
func validNewSlug(slug string) error {
	if err := token.ValidSlug(slug); err != nil {
		return invalid("invalid_slug", "slug", "slug %q is invalid: %v", clip(slug), err)
	}
	if allDigits(slug) {
		return invalid("invalid_slug", "slug", "slug %q is all digits and would be mistaken for an agent id", slug)
	}
	return nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validExpiresIn turns expires_in seconds into an expiry time (nil = never).
func (s *Service) validExpiresIn(expiresIn *int64) (*int64, error) {
	if expiresIn == nil {
		return nil, nil
	}
	if *expiresIn <= 0 {
		return nil, invalid("invalid_expires_in", "expires_in", "expires_in must be a positive number of seconds, got %d", *expiresIn)
	}
	if max := s.cfg.MaxTokenLifetime; max > 0 && *expiresIn > int64(max.Seconds()) {
		return nil, invalid("invalid_expires_in", "expires_in", "expires_in %d exceeds the maximum token lifetime of %d seconds", *expiresIn, int64(max.Seconds()))
	}
	const maxSeconds = 100 * 365 * 24 * 3600 // beyond this time.Duration overflows
	if *expiresIn > maxSeconds {
		return nil, invalid("invalid_expires_in", "expires_in", "expires_in %d is too large", *expiresIn)
	}
	return expiresIn, nil
}

// validAgentRole checks a grant role against the active bundle's roles.
func (s *Service) validAgentRole(field, role string) error {
	act, err := s.activation()
	if err != nil {
		return err
	}
	roles := act.AgentRoles
	if _, ok := roles[role]; ok {
		return nil
	}
	return invalid("invalid_role", field, "unknown %s %q: the active policy defines %s", field, clip(role), strings.Join(sortedKeys(roles), ", "))
}

// validMinimumRole defaults an empty minimum role to the lowest-ranked role
// of the active bundle and rejects roles the bundle does not define.
func (s *Service) validMinimumRole(role string) (string, error) {
	if role == "" {
		return "", nil
	}
	return role, s.validAgentRole("minimum_role", role)
}

// validUserRoles checks user roles against the active bundle's roles.
func (s *Service) validUserRoles(roles []string) error {
	act, err := s.activation()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range act.UserRoles {
		known[r] = true
	}
	if len(roles) == 0 {
		return invalid("invalid_role", "roles", "at least one role is required")
	}
	for _, r := range roles {
		if !known[r] {
			return invalid("invalid_role", "roles", "unknown role %q: the active policy defines %s", clip(r), strings.Join(act.UserRoles, ", "))
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
