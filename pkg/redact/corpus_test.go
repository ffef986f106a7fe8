package redact

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

// secretCase is one fake secret in a realistic context.
type secretCase struct {
	kind    string   // what it is; counted for coverage
	rule    string   // rule ID expected to redact it
	text    string   // the tool output or log text
	secrets []string // values that must not survive redaction
}

// secretCorpus returns the detector corpus. Values come from fakeGen, so
// every run sees the same fake secrets.
func secretCorpus() []secretCase {
	g := newFakeGen()
	var cs []secretCase
	add := func(kind, rule, text string, secrets ...string) {
		cs = append(cs, secretCase{kind, rule, text, secrets})
	}

	// AWS
	akid := "AKIA" + g.pick(charsBase32, 16)
	asid := "ASIA" + g.pick(charsBase32, 16)
	awsSecret := g.pick(charsBase64, 40)
	add("aws", "aws-access-token", "[default]\naws_access_key_id = "+akid+"\nregion = eu-west-1\n", akid)
	add("aws", "api-key-pair", "[default]\naws_secret_access_key = "+awsSecret+"\n", awsSecret)
	add("aws", "aws-access-token", "$ env | grep AWS\nAWS_ACCESS_KEY_ID="+asid+"\nAWS_REGION=us-east-1\n", asid)
	stsSecret := g.pick(charsBase64, 40)
	add("aws", "api-key-pair", `{"Credentials": {"AccessKeyId": "`+asid+`", "SecretAccessKey": "`+stsSecret+`", "Expiration": "2024-05-01T12:00:00Z"}}`, stsSecret, asid)

	// GCP
	gcpBody := g.pemBody(12)
	gcpJSON := `{"type": "service_account", "project_id": "acme-prod", "private_key_id": "` + g.pick(charsHex, 40) +
		`", "private_key": "-----BEGIN PRIVATE KEY-----\n` + strings.Join(gcpBody, `\n`) + `\n-----END PRIVATE KEY-----\n", "client_email": "deployer@acme-prod.iam.gserviceaccount.com"}`
	add("gcp", "secret-pair", gcpJSON, gcpBody...)
	gcpKey := "AIza" + g.pick(charsBase64URL, 35)
	add("gcp", "gcp-api-key", "curl 'https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key="+gcpKey+"'", gcpKey)

	// Azure
	azKey := g.base64Bytes(64)
	add("azure", "secret-pair", "DefaultEndpointsProtocol=https;AccountName=acmestore;AccountKey="+azKey+";EndpointSuffix=core.windows.net", azKey)
	azKey2 := g.base64Bytes(64)
	add("azure", "secret-pair", "export AZURE_STORAGE_KEY="+azKey2+"\n", azKey2)
	sasSig := g.pick(charsAlnum, 43) + "%3D"
	add("azure", "token-pair", "https://acmestore.blob.core.windows.net/backups/db.tar.gz?sv=2022-11-02&ss=b&srt=o&sp=r&se=2024-06-01T00:00:00Z&sig="+sasSig, sasSig)

	// GitHub
	ghp := "gh" + "p_" + g.pick(charsAlnum, 36)
	add("github", "github-pat", "$ git remote -v\norigin\thttps://"+ghp+"@github.com/acme/widgets.git (fetch)\n", ghp)
	finePAT := "github" + "_pat_" + g.pick(charsAlnum+"_", 82)
	add("github", "github-fine-grained-pat", "Created a fine-grained token "+finePAT+" with repo scope.", finePAT)
	gho := "gh" + "o_" + g.pick(charsAlnum, 36)
	add("github", "token-pair", `{"access_token":"`+gho+`","token_type":"bearer","scope":"repo"}`, gho)

	// GitLab
	glpat := "glpat" + "-" + g.pick(charsAlnum, 20)
	add("gitlab", "gitlab-pat", "machine gitlab.example.com login oauth2 password-file none\n# rotated: "+glpat+"\n", glpat)

	// Slack
	xoxb := "xo" + "xb-" + g.pick(charsDigits, 12) + "-" + g.pick(charsDigits, 13) + "-" + g.pick(charsAlnum, 24)
	add("slack", "slack-bot-token", "level=info msg=\"posting to #deploys with "+xoxb+"\"", xoxb)
	hook := "https://hooks.slack.com/services/T" + g.pick(charsBase32, 8) + "/B" + g.pick(charsBase32, 8) + "/" + g.pick(charsAlnum, 24)
	add("slack", "slack-webhook-url", "Notifications go to "+hook+" (channel #alerts).", hook[len("https://hooks.slack.com/services/"):])

	// Stripe
	skLive := "sk" + "_live_" + g.pick(charsAlnum, 24)
	add("stripe", "stripe-access-token", "stripe: charge failed for account acct_1 using "+skLive+" (card_declined)", skLive)
	rkLive := "rk" + "_live_" + g.pick(charsAlnum, 24)
	add("stripe", "stripe-access-token", "billing:\n  provider: stripe\n  restricted: "+rkLive+"\n", rkLive)

	// OpenAI / Anthropic
	proj := "sk-" + "proj-" + g.pick(charsBase64URL, 48) + "7"
	add("openai", "ai-api-key", "The request used "+proj+" and was rejected with 429.", proj)
	legacy := "sk-" + g.pick(charsAlnum, 47) + "1"
	add("openai", "ai-api-key", "# found in notebook cell 3\nclient = OpenAI()  # "+legacy+"\n", legacy)
	ant := "sk-" + "ant-api03-" + g.pick(charsBase64URL, 93) + "AA"
	add("anthropic", "ai-api-key", `{"level":"debug","msg":"init anthropic client","key_hint":"`+ant+`"}`, ant)

	// agentmesh's own API keys (pkg/apikey)
	amk := "amk_" + strings.ToLower(g.pick(charsBase32, 8)) + "_" + strings.ToLower(g.pick(charsBase32, 52))
	add("agentmesh", "agentmesh-api-key", "curl -H 'Authorization: Token' https://gw/mcp # key "+amk+" expired", amk)
	add("agentmesh", "agentmesh-api-key", `{"level":"info","msg":"configured","gateway_key":"`+amk+`"}`, amk)

	// Private keys
	rsaBody := g.pemBody(20)
	add("pem-rsa", "private-key", "$ cat id_rsa\n-----BEGIN RSA PRIVATE KEY-----\n"+strings.Join(rsaBody, "\n")+"\n-----END RSA PRIVATE KEY-----\n", rsaBody...)
	sshBody := g.pemBody(8)
	add("openssh", "private-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n"+strings.Join(sshBody, "\n")+"\n-----END OPENSSH PRIVATE KEY-----", sshBody...)
	ecBody := g.pemBody(3)
	add("pem-ec", "private-key", `{"tls": {"cert": "ok", "key_pem": "-----BEGIN EC PRIVATE KEY-----\n`+strings.Join(ecBody, `\n`)+`\n-----END EC PRIVATE KEY-----"}}`, ecBody...)

	// JWT, Bearer, Basic
	jwt1 := g.jwt()
	add("jwt", "jwt", "Cookie: theme=dark; session="+jwt1+"; lang=en", jwt1)
	jwt2 := g.jwt()
	add("jwt", "jwt", `{"user": "alice", "session": "`+jwt2+`"}`, jwt2)
	opaque := g.pick(charsAlnum, 40)
	add("bearer", "authorization-header", "> GET /v1/orders HTTP/1.1\n> Host: api.example.com\n> Authorization: Bearer "+opaque+"\n", opaque)
	basic := base64.StdEncoding.EncodeToString([]byte("svc-deploy:" + g.pick(charsAlnum, 16)))
	add("basic-auth", "authorization-header", "curl -s -H \"Authorization: Basic "+basic+"\" https://ci.example.com/api/json", basic)
	opaque2 := g.pick(charsAlnum, 32)
	add("bearer", "bearer-token", "2024-05-01T12:00:03Z retrying request with bearer "+opaque2+" after 401", opaque2)

	// Passwords in config formats
	pw := func() string { return g.pick(charsAlnum, 14) + "!" }
	p1, p2, p3, p4, p5, p6 := pw(), pw(), pw(), pw(), pw(), pw()
	add("password", "password-pair", `{"username": "svc_reports", "password": "`+p1+`", "host": "db.internal"}`, p1)
	add("password", "password-pair", "database:\n  host: db.internal\n  user: app\n  password: "+p2+"\n  pool: 10\n", p2)
	add("password", "password-pair", "PGHOST=db.internal\nDB_PASSWORD="+p3+"\nPGPORT=5432\n", p3)
	add("password", "password-pair", "<datasource>\n  <user>app</user>\n  <password>"+p4+"</password>\n</datasource>", p4)
	add("password", "password-pair", "[mysql]\nuser = backup\npasswd = "+p5+"\n", p5)
	add("password", "password-pair", `<appSettings><add key="SmtpPassword" value="`+p6+`" /></appSettings>`, p6)

	// Connection strings
	c1, c2, c3, c4, c5 := pw(), pw(), pw(), pw(), pw()
	add("connection-string", "url-credentials", "DATABASE_URL=postgres://orders:"+c1+"@db.internal:5432/orders?sslmode=require", c1)
	add("connection-string", "url-credentials", "Connecting to mysql://root:"+c2+"@10.0.0.5:3306/app ...", c2)
	add("connection-string", "url-credentials", `{"uri": "mongodb+srv://app:`+c3+`@cluster0.ab1cd.mongodb.net/prod?retryWrites=true"}`, c3)
	add("connection-string", "password-pair", "Server=tcp:acme.database.windows.net,1433;Database=prod;User ID=admin;Password="+c4+";Encrypt=True;", c4)
	add("connection-string", "url-credentials", "cache: redis://:"+c5+"@cache.internal:6379/0", c5)

	// API keys in URLs and headers
	k1, k2, k3 := g.pick(charsHex, 32), g.pick(charsAlnum, 40), g.pick(charsAlnum, 32)
	add("url-query", "api-key-pair", "GET https://api.weather.example/v2/forecast?city=Oslo&api_key="+k1+"&units=metric", k1)
	add("url-query", "token-pair", "redirect: https://app.example.com/callback#state=xyz&access_token="+k2+"&expires_in=3600", k2)
	add("header", "api-key-pair", "HTTP/1.1 200 OK\nX-API-Key: "+k3+"\nContent-Type: application/json\n", k3)

	// Other gitleaks-only formats
	npm := "npm_" + g.pick(charsAlnum, 36)
	add("npm", "npm-access-token", "# ~/.npmrc was printed by mistake: "+npm, npm)
	sg := "SG." + g.pick(charsBase64URL, 22) + "." + g.pick(charsBase64URL, 43)
	add("sendgrid", "sendgrid-api-token", "mail: provider sendgrid, credential "+sg+" loaded", sg)
	twilio := "SK" + g.pick(charsHex, 32)
	add("twilio", "twilio-api-key", "twilio sid "+twilio+" created", twilio)
	hvs := "hvs." + g.pick(charsBase64URL, 95)
	add("vault", "vault-service-token", "vault login succeeded; lease "+hvs+" renewable=true", hvs)
	generic := g.pick(charsAlnum, 32)
	add("generic", "generic-api-key", "webhook_signing_key_v2 = \""+generic+"\"", generic)

	// Personal data
	add("email", "email", "Ticket #4411 opened by jane.doe+support@example.co.uk yesterday.", "jane.doe+support@example.co.uk")
	add("email", "email", `[{"id": 7, "contact": "m.mustermann@beispiel.de"}]`, "m.mustermann@beispiel.de")
	visa := g.card("4", 16)
	add("credit-card", "credit-card", "Payment method: Visa "+group(visa, 4, " ")+" exp 09/27", visa[:8], visa[8:])
	mc := g.card("52", 16)
	add("credit-card", "credit-card", "card="+group(mc, 4, "-")+" status=authorized", mc[:8], mc[8:])
	amex := g.card("37", 15)
	add("credit-card", "credit-card", `{"pan": "`+amex+`", "brand": "amex"}`, amex)
	de := g.iban("DE")
	add("iban", "iban", "Please transfer the deposit to "+de+" by Friday.", de)
	gb := g.iban("GB")
	add("iban", "iban", "Beneficiary: ACME Ltd, IBAN "+group(gb, 4, " ")+", ref INV-2041", gb[4:12], gb[12:])

	// Secret assignments found by the key name alone: the values match no
	// known format (an access key ID outside gitleaks' alphabet, short or
	// low-entropy values), only the name says they are secret.
	sa := func(n int) string { return g.pick(charsLowerAlnum, n) }
	id1, id2, id3, id4 := "AKIA"+sa(12), "AKIA"+sa(8), "ASIA"+sa(8), "AKIA"+sa(6)
	add("assignment", "secret-assignment", "[prod]\naws_access_key_id = "+id1+"\nregion = eu-west-1\n", id1)
	add("assignment", "secret-assignment", "$ env | grep AWS\nAWS_ACCESS_KEY_ID="+id2+"\nAWS_REGION=us-east-1\n", id2)
	add("assignment", "secret-assignment", `{"Version": 1, "AccessKeyId": "`+id3+`", "Expiration": "2024-05-01T12:00:00Z"}`, id3)
	add("assignment", "secret-assignment", "GET /upload?aws_access_key_id="+id4+"&bucket=logs HTTP/1.1", id4)
	v1, v2, v3, v4, v5, v6, v7 := sa(8)+"!", sa(9), sa(7)+"#", sa(9), sa(8), sa(9), sa(9)
	add("assignment", "secret-assignment", "DB_PASSWORD_PROD="+v1+"\nDB_HOST=db.internal\n", v1)
	add("assignment", "secret-assignment", "oauth:\n  client_id: web-app\n  client_secret_value: "+v2+"\n", v2)
	add("assignment", "secret-assignment", "smtp_password_2 = \""+v3+"\"", v3)
	add("assignment", "secret-assignment", "config.secret_key_base = '"+v4+"'", v4)
	add("assignment", "secret-assignment", `{"role_id": "app", "vault_secret_id": "`+v5+`"}`, v5)
	add("assignment", "secret-assignment", "export GITHUB_TOKEN_V2="+v6, v6)
	add("assignment", "secret-assignment", "stripe:\n  apiKeyLive: "+v7+"\n", v7)

	// Credentials that look like words or sentences but are secrets: a
	// quoted passphrase, symbols and digits, the sample data's file.
	add("password", "password-pair", `password = "correct horse battery staple"`, "correct horse battery staple")
	add("password", "password-pair", "PASSWORD=Sup3r$ecret!\n", "Sup3r$ecret!")
	add("password", "password-pair", "password: Tr0ub4dor&3", "Tr0ub4dor&3")
	add("password", "password-pair", "Service credentials (FAKE)\n\ndatabase admin\n  user: admin\n  password: hunter2\n", "hunter2")
	return cs
}

// gitleaksOnlyRules are rule IDs that only the gitleaks stage produces.
func isGitleaksRule(rule string) bool {
	switch rule {
	case rulePasswordPair, ruleSecretPair, ruleTokenPair, ruleAPIKeyPair, ruleAuthHeader, ruleSecretAssignment,
		ruleURLCredentials, ruleBearerToken, ruleAIKey, rulePrivateKey, ruleJWT, ruleAgentmeshKey,
		ruleEmail, ruleCreditCard, ruleIBAN:
		return false
	}
	return true
}

func TestSecretCorpus(t *testing.T) {
	cases := secretCorpus()
	kinds := map[string]bool{}
	for _, c := range cases {
		kinds[c.kind] = true
	}
	if len(cases) < 69 || len(kinds) < 13 {
		t.Fatalf("corpus too small: %d secrets of %d kinds, want >= 69 of >= 13", len(cases), len(kinds))
	}
	t.Logf("corpus: %d secrets, %d kinds", len(cases), len(kinds))

	ctx := context.Background()
	r := New(Options{})
	ownOnly := New(Options{DisableGitleaks: true})
	for _, c := range cases {
		t.Run(c.kind+"/"+c.rule, func(t *testing.T) {
			res, err := r.RedactText(ctx, c.text)
			if err != nil {
				t.Fatalf("RedactText: %v", err)
			}
			for _, s := range c.secrets {
				if strings.Contains(res.Text, s) {
					t.Errorf("secret %q survived:\n%s", s, res.Text)
				}
			}
			if want := marker(c.rule); !strings.Contains(res.Text, want) {
				t.Errorf("output lacks %s (findings %v):\n%s", want, res.Findings, res.Text)
			}
			if isGitleaksRule(c.rule) {
				// The gitleaks stage must be what removes it. Without
				// gitleaks only the key-name rule, which yields to gitleaks'
				// labels, may remove it.
				res, err := ownOnly.RedactText(ctx, c.text)
				if err != nil {
					t.Fatal(err)
				}
				var others []Finding
				for _, f := range res.Findings {
					if f.RuleID != ruleSecretAssignment {
						others = append(others, f)
					}
				}
				if !strings.Contains(applyFindings(c.text, others), c.secrets[0]) {
					t.Errorf("own rules alone already remove %q; the case does not exercise gitleaks", c.secrets[0])
				}
			}
		})
	}
}

// benignCorpus holds secret-free text that must pass unchanged.
var benignCorpus = []struct{ name, text string }{
	{"uuids", "request_id=6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b trace=550e8400-e29b-41d4-a716-446655440000"},
	{"sha256 digest", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  dist/app.tar.gz"},
	{"docker digest", "Pulled nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"},
	{"npm integrity", `"node_modules/lodash": {"version": "4.17.21", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz", "integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg=="}`},
	{"git log", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 Merge pull request #42 from acme/fix-login\n3c1b2a9 Bump version to 2.4.1"},
	{"semver", "Upgraded go.opentelemetry.io/otel from v1.24.0 to v1.26.0-rc.1+build.5; requests==2.31.0"},
	{"go.sum line", "golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ="},
	{"prose password", "To reset your password, open Settings and choose Security."},
	{"prose token", "The token was rejected because it expired; request a new one from the admin."},
	{"prose api key", "API keys are managed in the console under Project > Credentials."},
	{"prose secret", "Rotate secrets every 90 days and never commit credentials to git."},
	{"prose bearer", "The bearer of this letter is authorised to collect the parcel."},
	{"prose authorization", "The Authorization header must be set on every request."},
	{"json record", `{"id": 1042, "customer": "Acme GmbH", "status": "shipped", "total": 129.90, "currency": "EUR", "items": [{"sku": "WID-7", "qty": 3}]}`},
	{"luhn-invalid card", "Reference 4111 1111 1111 1112 is not a valid card number."},
	{"non-card luhn number", "tracking number 1234567812345670 (carrier: DHL)"},
	{"nanosecond timestamp", `{"ts": 1714557600123456789, "event": "login"}`},
	{"order id", "Order ORD-2024-000123 was created for invoice INV-88231."},
	{"iso dates", "created 2024-05-01T12:00:00Z, updated 2024-05-03T08:15:30+02:00"},
	{"base64 short words", "payload=aGVsbG8gd29ybGQ= checksum=Zm9vYmFy"},
	{"phone number", "Call +1 (555) 123-4567 or +44 20 7946 0958."},
	{"invalid iban", "IBAN GB82WEST12345698765431 failed validation."},
	{"llm usage", `{"model": "gpt-4o", "usage": {"prompt_tokens": 812, "completion_tokens": 97, "total_tokens": 909}, "max_tokens": 1024}`},
	{"tokenizer", `{"tokenizer": "cl100k_base", "token_count": 512}`},
	{"password hint", `{"password_hint": "first pet", "password_policy": {"min_length": 12}}`},
	{"retina file", "assets/logo@2x.png and assets/icon@3x.png were optimised"},
	{"git ssh remote", "origin  git@github.com:acme/widgets.git (push)"},
	{"pwd in env", "HOME=/home/alice\nPWD=/home/alice/projects/widgets\nSHELL=/bin/bash\n"},
	{"aws example key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE  # from the AWS docs"},
	{"md5 listing", "d41d8cd98f00b204e9800998ecf8427e  empty.txt\n900150983cd24fb0d6963f7d28e17f72  abc.txt"},
	{"plain url", "See https://example.com/docs/getting-started?page=2#install for details."},
	{"k8s output", "pod/web-7d4b9c8f6-x2x9k   1/1   Running   0   3d\nservice/web   ClusterIP   10.96.0.12   <none>   80/TCP"},
	{"env placeholder", "DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN=<your-token-here>\nsecret: \"\"\n"},
	{"already redacted", "password: [REDACTED:password-pair]\ntoken=[REDACTED:token-pair]"},
	{"access log", `10.0.0.7 - - [01/May/2024:12:00:00 +0000] "GET /api/v1/users?page=2&limit=50 HTTP/1.1" 200 512 "-" "curl/8.4.0"`},
	{"page token", `{"items": [], "nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRjZDhxM2JxaTN6ZDA4EAE"}`},
	{"fibonacci", "// output: 0 1 1 2 3 5 8 13 21 34 55 89 144 233 377 610 987"},
	{"path before colon", `parse "../../../../etc/passwd": invalid URI for request`},
	{"go code auth", `auth := username + ":" + password`},
	{"printf verb", `t.Errorf("Authorization=%q, want no header", h)`},

	// Prose that continues after "password:", "API key:" and the like.
	{"prose reset click", "How to reset your password: click Forgot password."},
	{"prose length rule", "Password: must be at least 12 characters"},
	{"prose quoted button", `Reset your password: click "Forgot password" on the sign-in page.`},
	{"prose vault", "password: see the vault"},
	{"prose required", "the password: is required"},
	{"prose sample readme", sampleReadme},
	{"prose dashboard", "Your API key: use the one from the dashboard, never a personal key."},
	{"prose token label", "Token: the value shown once after you create it."},
	{"prose client secret", "Client secret: see the Credentials page in the console."},
	{"prose confirm", "New password: enter it twice to confirm."},
	{"prose self service", "Forgot your password? Contact IT. Password: reset it via the self-service portal."},
	{"prose minimum", "Password: Minimum of eight characters, one digit and one symbol."},
	{"prose same as", "Admin password: is the same as the one for the staging database."},
	{"prose none", "Secret: none of the keys in this file are real."},
	{"prose api path", "API key: required for every request to /v1/*."},
	{"prose expiry", "Token: expires after 30 days; request a new one from the admin."},
	{"prose shown once", "Note the password: it is shown only once."},
	{"prose version control", "Secret key: keep it out of version control and rotate it regularly."},
	{"prose your password", "Password: Your password must contain 8+ characters."},
	{"prose go to", "If you forgot your password: go to Settings > Security > Reset."},
	{"prose stored", "Database password: is stored in the vault, not in this repository."},
	{"prose docs", "api_key: see docs/setup.md for how to obtain one"},
	{"prose hyphenated", "Password: must be a 12-character string with no spaces."},
	{"key names without secrets", "password_hint: first pet\nsecret_name: db-creds\ntoken_type: bearer\napi_key_header: X-Api-Key\npassword_min_length: 12"},
}

// knownFalsePositives lists benign inputs that are (partly) redacted
// anyway, with the reason. Each entry must still be redacted — if a change
// fixes one, the test says so and it should be removed from this list.
var knownFalsePositives = map[string]string{
	"page token": "gitleaks generic-api-key flags any high-entropy value after a key containing \"token\"; " +
		"in plain text the cursor is indistinguishable from a secret (RedactJSON/RedactValue exempt known cursor keys)",
}

func TestBenignCorpus(t *testing.T) {
	if len(benignCorpus) < 60 {
		t.Fatalf("benign corpus has %d entries, want >= 60", len(benignCorpus))
	}
	ctx := context.Background()
	r := New(Options{})
	for _, c := range benignCorpus {
		t.Run(c.name, func(t *testing.T) {
			res, err := r.RedactText(ctx, c.text)
			if err != nil {
				t.Fatalf("RedactText: %v", err)
			}
			changed := res.Text != c.text
			if reason, known := knownFalsePositives[c.name]; known {
				if !changed {
					t.Errorf("listed as a known false positive (%s) but now passes unchanged; remove it from the list", reason)
				}
				return
			}
			if changed || len(res.Findings) > 0 {
				t.Errorf("benign text changed (findings %v):\n in: %s\nout: %s", res.Findings, c.text, res.Text)
			}
		})
	}
}
