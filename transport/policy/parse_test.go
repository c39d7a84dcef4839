package policy

import (
	"errors"
	"strings"
	"testing"
)

// doc wraps statements in a policy document.
func doc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// stmt is an Allow-everyone-to-Encrypt statement with extra members appended.
func stmt(extra string) string {
	return `{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"` + extra + `}`
}

// cond is stmt with a Condition element.
func cond(c string) string { return doc(stmt(`,"Condition":` + c)) }

func TestParseMalformed(t *testing.T) {
	big := doc(stmt(`,"Sid":"` + strings.Repeat("x", MaxPolicySize) + `"`))
	tests := []struct {
		name, doc, path, msg string
	}{
		{"empty", "", "", "empty"},
		{"white space only", " \n\t", "", "empty"},
		{"bad JSON", `{"Version":"2012-10-17",`, "", "invalid JSON"},
		{"bad JSON inside Statement", `{"Version":"2012-10-17","Statement":[{"Effect":}]}`, "Statement[0].Effect", "invalid JSON"},
		{"not an object", `["Version"]`, "", "must be a JSON object"},
		{"trailing data", doc(stmt("")) + `{}`, "", "after the policy document"},
		{"too big", big, "", "limit is 32768"},
		{"invalid UTF-8", "{\"Version\":\"2012-10-17\",\"Id\":\"\xff\"}", "", "UTF-8"},
		{"too deep", cond(`{"StringEquals":{"kms:EncryptionContext:a":[[[["x"]]]]}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContext:a[0][0][0]", "nested too deeply"},
		{"missing Version", `{"Statement":[` + stmt("") + `]}`, "Version", "missing"},
		{"wrong Version", `{"Version":"2008-10-17","Statement":[` + stmt("") + `]}`, "Version", "unsupported version"},
		{"Version a number", `{"Version":2012,"Statement":[` + stmt("") + `]}`, "Version", "the number 2012"},
		{"unknown top-level field", `{"Version":"2012-10-17","Extra":1,"Statement":[` + stmt("") + `]}`, "Extra", "unknown field"},
		{"top-level field wrong case", `{"version":"2012-10-17","Statement":[` + stmt("") + `]}`, "version", `did you mean "Version"`},
		{"Id not a string", `{"Version":"2012-10-17","Id":7,"Statement":[` + stmt("") + `]}`, "Id", "must be a string"},
		{"missing Statement", `{"Version":"2012-10-17"}`, "Statement", "missing"},
		{"empty Statement", doc(), "Statement", "at least one statement"},
		{"Statement a string", `{"Version":"2012-10-17","Statement":"Allow"}`, "Statement", "must be an object or an array"},
		{"statement not an object", doc(`1`), "Statement[0]", "must be an object"},
		{"duplicate key", doc(`{"Effect":"Deny","Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Effect", "duplicate key"},
		{"unknown statement field", doc(stmt(`,"Effects":"Allow"`)), "Statement[0].Effects", `did you mean "Effect"`},
		{"unknown statement field far off", doc(stmt(`,"Comment":"x"`)), "Statement[0].Comment", "unknown field"},
		{"missing Effect", doc(`{"Principal":"*","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Effect", "missing"},
		{"missing Effect in second statement", doc(stmt(""), `{"Principal":"*","Action":"kms:Encrypt","Resource":"*"}`), "Statement[1].Effect", "missing"},
		{"Effect Maybe", doc(`{"Effect":"Maybe","Principal":"*","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Effect", `got "Maybe"`},
		{"Effect lower case", doc(`{"Effect":"allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Effect", "case-sensitive"},
		{"Effect in single-object Statement", `{"Version":"2012-10-17","Statement":{"Effect":true,"Principal":"*","Action":"kms:Encrypt","Resource":"*"}}`, "Statement.Effect", "got true"},
		{"Sid not a string", doc(stmt(`,"Sid":1`)), "Statement[0].Sid", "must be a string"},
		{"Sid with control character", doc(stmt(`,"Sid":"a\u0007b"`)), "Statement[0].Sid", "control character"},
		{"duplicate Sid", doc(stmt(`,"Sid":"A"`), stmt(`,"Sid":"B"`), stmt(`,"Sid":"A"`)), "Statement[2].Sid", `also used by Statement[0]`},
		{"missing Action", doc(`{"Effect":"Allow","Principal":"*","Resource":"*"}`), "Statement[0].Action", "missing"},
		{"Action a number", doc(`{"Effect":"Allow","Principal":"*","Action":42,"Resource":"*"}`), "Statement[0].Action", "must be a string or an array of strings"},
		{"Action an object", doc(`{"Effect":"Allow","Principal":"*","Action":{"kms":"Encrypt"},"Resource":"*"}`), "Statement[0].Action", "an object"},
		{"Action array with a number", doc(`{"Effect":"Allow","Principal":"*","Action":["kms:Encrypt",7],"Resource":"*"}`), "Statement[0].Action[1]", "must be a string"},
		{"Action empty array", doc(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`), "Statement[0].Action", "empty array"},
		{"Action empty string", doc(`{"Effect":"Allow","Principal":"*","Action":"","Resource":"*"}`), "Statement[0].Action", "empty action"},
		{"Action typo", doc(`{"Effect":"Allow","Principal":"*","Action":["kms:Decrypt","kms:Encrpyt"],"Resource":"*"}`), "Statement[0].Action[1]", `unknown action "kms:Encrpyt"`},
		{"Action other service", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}`), "Statement[0].Action", `unknown service "s3"`},
		{"Action without service", doc(`{"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}`), "Statement[0].Action", "SERVICE:Name"},
		{"Action pattern matching nothing", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:Foo*","Resource":"*"}`), "Statement[0].Action", "matches no action"},
		{"NotAction", doc(`{"Effect":"Deny","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"}`), "Statement[0].NotAction", "NotAction is not supported"},
		{"NotPrincipal", doc(`{"Effect":"Deny","NotPrincipal":{"Trent":"bob"},"Action":"kms:Decrypt","Resource":"*"}`), "Statement[0].NotPrincipal", "not supported"},
		{"NotResource", doc(`{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","NotResource":"*"}`), "Statement[0].NotResource", "not supported"},
		{"missing Principal", doc(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal", "missing"},
		{"Principal a bare name", doc(`{"Effect":"Allow","Principal":"bob","Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal", `got "bob"`},
		{"Principal an array", doc(`{"Effect":"Allow","Principal":["bob"],"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal", "an array"},
		{"Principal empty object", doc(`{"Effect":"Allow","Principal":{},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal", "names no principal"},
		{"Principal Service", doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.Service", "do not exist in Trent"},
		{"Principal unknown kind", doc(`{"Effect":"Allow","Principal":{"trent":"bob"},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.trent", `did you mean "Trent"`},
		{"Principal empty list", doc(`{"Effect":"Allow","Principal":{"Trent":[]},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.Trent", "empty array"},
		{"Principal list with a number", doc(`{"Effect":"Allow","Principal":{"Trent":["bob",3]},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.Trent[1]", "must be a string"},
		{"Principal AWS ARN", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.AWS", "ARNs do not name Trent principals"},
		{"Principal empty role", doc(`{"Effect":"Allow","Principal":{"Trent":["bob","role/"]},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.Trent[1]", "role name is empty"},
		{"Principal with space", doc(`{"Effect":"Allow","Principal":{"Trent":"bob smith"},"Action":"kms:Encrypt","Resource":"*"}`), "Statement[0].Principal.Trent", "white space"},
		{"missing Resource", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt"}`), "Statement[0].Resource", "missing"},
		{"Resource not an ARN", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"key/abc"}`), "Statement[0].Resource", "key ARN"},
		{"Resource AWS ARN", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":["*","arn:aws:kms:us-east-1:111122223333:key/x"]}`), "Statement[0].Resource[1]", "key ARN"},
		{"Condition not an object", cond(`"x"`), "Statement[0].Condition", "must be an object"},
		{"unknown operator", cond(`{"StringFoo":{"kms:EncryptionContext:app":"x"}}`), "Statement[0].Condition.StringFoo", "unknown condition operator"},
		{"unsupported operator", cond(`{"NumericEquals":{"kms:EncryptionContext:n":"1"}}`), "Statement[0].Condition.NumericEquals", "not supported"},
		{"operator body not an object", cond(`{"StringEquals":"x"}`), "Statement[0].Condition.StringEquals", "must be an object"},
		{"operator body empty", cond(`{"StringEquals":{}}`), "Statement[0].Condition.StringEquals", "names no condition key"},
		{"unknown condition key", cond(`{"StringEquals":{"aws:SourceIp":"10.0.0.1"}}`), "Statement[0].Condition.StringEquals.aws:SourceIp", "unknown condition key"},
		{"unknown kms condition key", cond(`{"StringEquals":{"kms:ViaService":"ec2.eu-1.amazonaws.com"}}`), "Statement[0].Condition.StringEquals.kms:ViaService", "unknown condition key"},
		{"wildcard in context key", cond(`{"StringEquals":{"kms:EncryptionContext:tmp*":"x"}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContext:tmp*", "wildcards are not supported"},
		{"empty context key", cond(`{"StringEquals":{"kms:EncryptionContext:":"x"}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContext:", "needs a context key"},
		{"keys without set qualifier", cond(`{"StringEquals":{"kms:EncryptionContextKeys":"app"}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContextKeys", "multi-valued"},
		{"set qualifier on single-valued key", cond(`{"ForAllValues:StringEquals":{"kms:EncryptionContext:app":"x"}}`), "Statement[0].Condition.ForAllValues:StringEquals.kms:EncryptionContext:app", "single-valued"},
		{"condition value a number", cond(`{"StringEquals":{"kms:EncryptionContext:app":5}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContext:app", "the number 5"},
		{"condition value list with an object", cond(`{"StringEquals":{"kms:EncryptionContext:app":["a",{}]}}`), "Statement[0].Condition.StringEquals.kms:EncryptionContext:app[1]", "an object"},
		{"condition value empty list", cond(`{"StringLike":{"kms:EncryptionContext:app":[]}}`), "Statement[0].Condition.StringLike.kms:EncryptionContext:app", "empty array"},
		{"policy variable", cond(`{"StringEquals":{"kms:CallerPrincipal":"${aws:username}"}}`), "Statement[0].Condition.StringEquals.kms:CallerPrincipal", "policy variables"},
		{"alias without prefix", cond(`{"StringEquals":{"kms:ViaAlias":["alias/a","prod"]}}`), "Statement[0].Condition.StringEquals.kms:ViaAlias[1]", `starts with "alias/"`},
		{"Null bad value", cond(`{"Null":{"kms:ViaAlias":"maybe"}}`), "Statement[0].Condition.Null.kms:ViaAlias", "Null takes"},
		{"Null with qualifier", cond(`{"ForAnyValue:Null":{"kms:EncryptionContextKeys":"true"}}`), "Statement[0].Condition.ForAnyValue:Null", "no ForAnyValue"},
		{"Null with IfExists", cond(`{"NullIfExists":{"kms:ViaAlias":"true"}}`), "Statement[0].Condition.NullIfExists", "no IfExists"},
		{"duplicate condition key", cond(`{"StringEquals":{"kms:ViaAlias":"alias/a","kms:ViaAlias":"alias/b"}}`), "Statement[0].Condition.StringEquals.kms:ViaAlias", "duplicate key"},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d malformed documents", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse accepted %s", tc.doc)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Path != tc.path {
				t.Errorf("Path = %q, want %q (msg %q)", pe.Path, tc.path, pe.Msg)
			}
			if !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("Msg = %q, want it to contain %q", pe.Msg, tc.msg)
			}
			if tc.path != "" && !strings.Contains(err.Error(), tc.path+": ") {
				t.Errorf("Error() = %q does not name the path", err.Error())
			}
			if len(pe.Msg) > 400 {
				t.Errorf("message is %d bytes long", len(pe.Msg))
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"minimal", doc(stmt(""))},
		{"single statement object", `{"Version":"2012-10-17","Id":"key-policy-1","Statement":` + stmt(`,"Sid":"One"`) + `}`},
		{"copied from AWS", `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": ["admin", "role/admin"]},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": "app"},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      "Resource": "*",
      "Condition": {
        "StringEquals": {"kms:RequestAlias": "alias/app"},
        "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["app*", "tenant"]},
        "Null": {"kms:EncryptionContextKeys": false}
      }
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": "app"},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      "Resource": "*"
    }
  ]
}`},
		{"both principal spellings", doc(`{"Effect":"Allow","Principal":{"Trent":"a","AWS":["b","role/r-*"]},"Action":"*","Resource":"*"}`)},
		{"case-insensitive operator and key names", cond(`{"stringequals":{"KMS:ENCRYPTIONCONTEXT:app":"x"},"FORANYVALUE:STRINGLIKEIFEXISTS":{"kms:encryptioncontextkeys":"a*"}}`)},
		{"resource ARN patterns", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":["arn:trent:kms:eu-1::key/k1","arn:trent:kms:*::key/mrk-*"]}`)},
		{"empty condition value", cond(`{"StringEquals":{"kms:EncryptionContext:app":""}}`)},
		{"trent actions", doc(`{"Effect":"Allow","Principal":{"Trent":"role/ops"},"Action":["trent:*","kms:ListKeys"],"Resource":"*"}`)},
		{"empty Condition", cond(`{}`)},
		{"exactly the size limit", func() string {
			d := doc(stmt(`,"Sid":"`))
			pad := MaxPolicySize - len(d) - 2
			return doc(stmt(`,"Sid":"` + strings.Repeat("s", pad) + `"`))
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.doc)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}
