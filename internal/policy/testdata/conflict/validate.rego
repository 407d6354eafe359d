package agentauthz.validate

import data.agentauthz.config

errors contains sprintf("settings.token_reach is %v, want agent or owner", [r]) if {
	r := config.settings.token_reach
	not r in {"agent", "owner"}
}
