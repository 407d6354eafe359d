package agentauthz.main

decision := {"allow": false, "role": null, "denied_by": ["clock"], "reasons": [sprintf("now is %d", [time.now_ns()])]}
