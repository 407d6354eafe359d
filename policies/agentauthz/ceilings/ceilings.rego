# METADATA
# description: |
#   The capability ceilings. A user's capabilities come from its roles; a token
#   acts as its owner but never beyond the token's own list; the store
#   operator holds everything when the bundle says so. Lookups go by key into
#   objects so that the hot path never builds a set of all capabilities.
package agentauthz.ceilings

import data.agentauthz.config

# user_has(user, cap) is the owner ceiling: an active user holds cap when one
# of its roles holds cap or the implies-all capability (WordPress's
# manage_options stands for every capability). Unknown roles grant nothing.
user_has(user, cap) if {
	user.status == "active"
	some name in user.roles
	config.roles[name][cap] == true
}

user_has(user, _) if {
	user.status == "active"
	some name in user.roles
	config.roles[name][config.settings.implies_all_capability] == true
}

# token_allows(token, cap) is the token ceiling: a null list means "the
# owner's ceiling", a list means exactly those names, so [] allows nothing.
token_allows(token, _) if token.capabilities == null

token_allows(token, cap) if {
	is_array(token.capabilities)
	cap in token.capabilities
}

# token_ceiling_reason(cap) is the sentence of a token_ceiling denial.
token_ceiling_reason(cap) := sprintf("token ceiling does not include %s", [cap])

# valid_ceiling(caps) is true for null and for a list of capability names.
valid_ceiling(caps) if caps == null

valid_ceiling(caps) if {
	is_array(caps)
	every cap in caps {
		is_string(cap)
	}
}

# operator_is_superuser: the store operator (the CLI without --as) may do everything.
operator_is_superuser if {
	input.principal.kind == "operator"
	config.settings.operator_is_superuser == true
}

# principal_has(cap): the caller holds cap. A token needs it from both its
# owner and its own list; audiences and anonymous callers hold no capability.
principal_has(cap) if {
	input.principal.kind == "user"
	user_has(input.principal.user, cap)
}

principal_has(cap) if {
	input.principal.kind == "token"
	token_allows(input.principal.token, cap)
	user_has(input.principal.user, cap)
}

principal_has(_) if operator_is_superuser

# known_capabilities names every capability the bundle mentions. It is built
# only where a list is needed (whoami, minting a token at the owner's ceiling),
# never on the authorize path.
known_capabilities contains cap if {
	some role in config.roles
	some cap, held in role
	held == true
}

known_capabilities contains cap if {
	some entry in config.actions
	cap := entry.capability
	is_string(cap)
}

known_capabilities contains cap if {
	some entry in config.abilities
	cap := entry.capability
	is_string(cap)
}

known_capabilities contains config.settings.implies_all_capability

# effective_capabilities is what the caller may actually use, sorted:
# for a token, its owner's capabilities cut down to the token's list.
effective_capabilities := sort({cap |
	some cap in known_capabilities
	principal_has(cap)
})
