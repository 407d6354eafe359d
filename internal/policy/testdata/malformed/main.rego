# Each input.shape selects one way a decision can be wrong; "ok" is right.
package agentauthz.main

decision := {"allow": true, "role": null, "denied_by": [], "reasons": []} if input.shape == "ok"

decision := "allow" if input.shape == "string"

decision := {"allow": "yes"} if input.shape == "allow_not_bool"

decision := {"role": "admin"} if input.shape == "allow_missing"

decision := {"allow": false, "denied_by": "agent_role"} if input.shape == "denied_by_not_array"

decision := {"allow": true, "denied_by": ["agent_role"]} if input.shape == "allow_and_denied"

decision := {"allow": false, "accessible": [{"agent_id": "7", "role": "viewer"}]} if input.shape == "accessible_bad_id"

decision := {"allow": false, "role": 3} if input.shape == "role_not_string"
