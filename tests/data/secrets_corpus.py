"""A corpus for the secret detector: fabricated credentials in the formats people paste into chats, and
ordinary text that looks like them.

Every secret is made here from a seeded random generator in its format's shape (prefix, length,
alphabet, Luhn digit): none is real, and the file holds no key-shaped literal. ``SECRETS`` entries are
``(format, text, secret)``: ``secret`` is the part of ``text`` that must not survive redaction.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable

_rng = random.Random(20261202)
ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"


def fake(n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters, at least one letter and one digit when the alphabet has both."""
    while True:
        out = "".join(_rng.choice(alphabet) for _ in range(n))
        has_digit = any(c.isdigit() for c in alphabet)
        has_letter = any(c.isalpha() for c in alphabet)
        if (not has_digit or any(c.isdigit() for c in out)) and (
            not has_letter or any(c.isalpha() for c in out)
        ):
            return out


def luhn_number(prefix: str, length: int) -> str:
    """A card-shaped number that passes the Luhn check."""
    body = prefix + "".join(_rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
            for i, d in enumerate(int(c) for c in reversed(digits))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def grouped(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(digits[at : at + size])
        at += size
    return sep.join(parts)


def pem(label: str, lines: int, *, newline: str = "\n", end: bool = True) -> str:
    body = newline.join(fake(64, B64) for _ in range(lines))
    block = f"-----BEGIN {label}-----{newline}{body}{newline}"
    return block + (f"-----END {label}-----" if end else "")


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def jwt() -> str:
    header = b64url({"alg": "HS256", "typ": "JWT"})
    payload = b64url({"sub": fake(10, LOWER_ALNUM), "iat": 1764668571})
    return f"{header}.{payload}.{fake(43, URLSAFE)}"


def _secrets() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []

    def add(fmt: str, secret: str, template: str = "{}") -> None:
        out.append((fmt, template.format(secret), secret))

    # AI providers
    add("OpenAI legacy", f"sk-{fake(20)}T3BlbkFJ{fake(20)}", "my openai key is {}")
    add("OpenAI project", f"sk-proj-{fake(120, URLSAFE)}", "OPENAI_API_KEY={}")
    add("OpenAI service account", f"sk-svcacct-{fake(100, URLSAFE)}", "use {} for the batch job")
    add("Anthropic", f"sk-ant-api03-{fake(93, URLSAFE)}AA", "Here's my Claude key: {}")
    add("Anthropic admin", f"sk-ant-admin01-{fake(93, URLSAFE)}AA", "{}")
    add("OpenRouter", f"sk-or-v1-{fake(64, HEX)}", "router key {} thanks")
    add("Hugging Face", f"hf_{fake(34)}", "my huggingface token is {}")
    add("Hugging Face in code", f"hf_{fake(34)}", 'login(token="{}")')
    add("Groq", f"gsk_{fake(52)}", "GROQ_API_KEY={}")
    add("Replicate", f"r8_{fake(37)}", "export REPLICATE_API_TOKEN={}")
    add("xAI", f"xai-{fake(80)}", "grok key {}")
    add("Google AI", f"AIza{fake(35, URLSAFE)}", "gemini api key {}")
    # payment
    add("Stripe live", f"sk_live_{fake(24)}", "stripe secret {}")
    add("Stripe live, long", f"sk_live_{fake(99)}", "{}")
    add("Stripe restricted", f"rk_live_{fake(24)}", "restricted key: {}")
    add("Stripe test", f"sk_test_{fake(24)}", "test mode key {}")
    add("Stripe webhook", f"whsec_{fake(32)}", "STRIPE_WEBHOOK_SECRET={}")
    add("Square access", f"sq0atp-{fake(22, URLSAFE)}", "square token {}")
    add("Square OAuth", f"sq0csp-{fake(43, URLSAFE)}", "{}")
    visa, mastercard, amex = luhn_number("4", 16), luhn_number("5", 16), luhn_number("37", 15)
    add("Visa, spaced", grouped(visa, (4, 4, 4, 4), " "), "charge my card {} please")
    add("Mastercard, hyphens", grouped(mastercard, (4, 4, 4, 4), "-"), "card: {} exp 09/28")
    add("Amex", grouped(amex, (4, 6, 5), " "), "amex {}")
    add("Card, no separators", luhn_number("6011", 16), "my discover card number is {}")
    # package registries
    add("npm", f"npm_{fake(36)}", "npm token {}")
    add("npmrc", f"npm_{fake(36)}", "//registry.npmjs.org/:_authToken={}")
    add("PyPI", f"pypi-AgEIcHlwaS5vcmc{fake(80, URLSAFE)}", "twine upload with {}")
    # email and messaging
    add("SendGrid", f"SG.{fake(22, URLSAFE)}.{fake(43, URLSAFE)}", "SENDGRID_API_KEY={}")
    add("Mailgun", f"key-{fake(32, HEX)}", "mailgun {}")
    add("Mailchimp", f"{fake(32, HEX)}-us14", "mailchimp key {}")
    add("Slack bot", f"xoxb-{fake(12, '0123456789')}-{fake(13, '0123456789')}-{fake(24)}", "{}")
    add("Slack user", f"xoxp-{fake(12, '0123456789')}-{fake(12, '0123456789')}-{fake(32, HEX)}", "{}")
    add(
        "Slack webhook",
        f"https://hooks.slack.com/services/T{fake(8, UPPER_ALNUM)}/B{fake(8, UPPER_ALNUM)}/{fake(24)}",
        "post to {}",
    )
    add("Slack app", f"xapp-1-A{fake(10, UPPER_ALNUM)}-{fake(13, '0123456789')}-{fake(64, HEX)}", "{}")
    add("Discord bot", f"M{fake(25, URLSAFE)}.{fake(6, URLSAFE)}.{fake(27, URLSAFE)}", "bot token {}")
    add(
        "Discord webhook",
        f"https://discord.com/api/webhooks/{fake(18, '0123456789')}/{fake(68, URLSAFE)}",
        "{}",
    )
    add("Telegram bot", f"{fake(10, '0123456789')}:{fake(35, URLSAFE)}", "telegram bot {}")
    add("Twilio API key", f"SK{fake(32, HEX)}", "twilio {}")
    add("Twilio auth token", fake(32, HEX), "twilio auth token: {}")
    # cloud
    add("AWS access key id", f"AKIA{fake(16, UPPER_ALNUM)}", "{}")
    add("AWS secret, config", fake(40, B64), "aws_secret_access_key = {}")
    add("AWS secret, env", fake(40, B64), 'AWS_SECRET_ACCESS_KEY="{}"')
    add(
        "Azure storage",
        fake(86, B64) + "==",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={};EndpointSuffix=core.windows.net",
    )
    add("Azure client secret", f"{fake(3)}8Q~{fake(34, URLSAFE + '.~')}", "client secret {}")
    add("Azure SAS", f"{fake(43, B64)}%3D", "https://acme.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig={}")
    add("Google OAuth", f"GOCSPX-{fake(28, URLSAFE)}", "{}")
    gcp_key = pem("PRIVATE KEY", 6, newline="\\n")
    add("GCP service account", gcp_key, '{{"type": "service_account", "private_key": "{}\\n"}}')
    add("DigitalOcean", f"dop_v1_{fake(64, HEX)}", "DO token {}")
    add("Vault", f"hvs.{fake(90, URLSAFE)}", "VAULT_TOKEN={}")
    # version control
    add("GitHub classic", f"ghp_{fake(36)}", "{}")
    add("GitHub OAuth", f"gho_{fake(36)}", "my github token is {}")
    add("GitHub fine-grained", f"github_pat_{fake(22)}_{fake(59)}", "{}")
    add("GitLab", f"glpat-{fake(20, URLSAFE)}", "gitlab token {}")
    add("Bitbucket app password", f"ATBB{fake(32)}", "{}")
    add("Atlassian API token", f"ATATT3x{fake(180, URLSAFE + '=')}", "jira token {}")
    add("Shopify", f"shpat_{fake(32, HEX)}", "{}")
    add("Docker Hub", f"dckr_pat_{fake(27, URLSAFE)}", "docker login -u sam -p {}")
    add("Linear", f"lin_api_{fake(40)}", "LINEAR_KEY {}")
    add("Heroku", f"HRKU-{fake(36, URLSAFE)}", "heroku token {}")
    # generic shapes
    add("JWT", jwt(), "{}")
    add("Bearer header", fake(40, URLSAFE), "Authorization: Bearer {}")
    basic = base64.b64encode(f"admin:{fake(12)}".encode()).decode()
    add("Basic auth header", basic, "Authorization: Basic {}")
    add("Postgres URL", fake(14), "DATABASE_URL=postgres://app:{}@db.internal:5432/prod")
    add("MySQL URL", fake(12), "mysql://root:{}@127.0.0.1:3306/shop")
    add("Redis URL, no user", fake(16), "redis://:{}@cache:6379/0")
    add("Git URL with token", f"ghp_{fake(36)}", "git clone https://bob:{}@github.com/acme/api.git")
    add("AMQP URL", fake(12), "amqp://guest:{}@rabbit/vhost")
    add("RSA private key", pem("RSA PRIVATE KEY", 8), "here is the deploy key:\n{}\nkeep it safe")
    add("OpenSSH private key", pem("OPENSSH PRIVATE KEY", 5), "{}")
    add("EC key, truncated", pem("EC PRIVATE KEY", 3, end=False), "pasted half of it: {}")
    add("PGP private key", pem("PGP PRIVATE KEY BLOCK", 4), "{}")
    # named in prose or config
    add("prose: VPN password", f"{fake(4)}#{fake(6)}", "the password for the VPN is {}")
    add("prose: wifi", f"hunter{fake(4, string.digits)}!", "My wifi password is {}")
    add("prose: PIN", fake(4, string.digits), "my bank PIN is {}")
    add("prose: quoted secret", f"blue-falcon-{fake(2, string.digits)}", "The secret for staging is '{}'")
    add("config: DB_PASSWORD", fake(14), "DB_PASSWORD={}")
    add("config: api_key", fake(32, LOWER_ALNUM), "api_key: {}")
    add("JSON: client_secret", fake(40, URLSAFE), '{{"client_id": "web", "client_secret": "{}"}}')
    add("prose: token", fake(24), "the access token is {}, it expires tomorrow")
    add("prose: passphrase", "correct-horse-battery-staple", "my passphrase is {}")
    add("prose: then a clause", f"Summer{fake(4, string.digits)}", "My password was {} but I changed it.")
    add("prose: colon", f"{fake(10)}", "wifi password: {} (don't share)")
    add("prose: pw", f"Pa55{fake(7)}", "pw: {}")
    add("prose: bare key", fake(40, B64), "my key is {}")
    add("command line: sshpass", f"S{fake(10)}", "sshpass -p '{}' ssh deploy@web1")
    add("netrc line", f"ghp_{fake(36)}", "machine github.com login bob password {}")
    return out


def _benign() -> list[str]:
    uuid = f"{fake(8, HEX)}-{fake(4, HEX)}-4{fake(3, HEX)}-a{fake(3, HEX)}-{fake(12, HEX)}"
    not_luhn = luhn_number("4", 16)
    not_luhn = not_luhn[:-1] + str((int(not_luhn[-1]) + 1) % 10)
    return [
        # mentions of passwords, tokens, secrets and keys that contain none
        "I forgot my password yesterday",
        "The secret is love and patience",
        "The secret to good bread is patience.",
        "My password is too long to remember",
        "The password is stored in 1Password.",
        "Please reset the password for the VPN, it expired.",
        "The token is valid for 24 hours.",
        "Our API key rotation happens every 90 days.",
        "Use a password manager like Bitwarden.",
        "The key to success is consistency.",
        "The secret ingredient is cinnamon.",
        "Tokens: 1500 used of 4096",
        "max_tokens: 4096",
        "token_count = 123456",
        "Password: ******",
        "password: [redacted]",
        "Set OPENAI_API_KEY=your-key-here before running it",
        "api_key = os.environ['OPENAI_API_KEY']",
        'DB_PASSWORD="${DB_PASSWORD}"',
        "the secret is in the sauce",
        "Secret Santa gift exchange is on Friday",
        "Top secret: the launch is on May 3",
        "a token of appreciation",
        "my PIN is the same as always",
        "The password policy requires 12 characters, a digit and a symbol.",
        "The API key is stored in an environment variable called OPENAI_API_KEY.",
        "the private key is on my laptop",
        "The bearer of bad news arrived late.",
        "Bearer tokens expire after an hour",
        "my password is up-to-date",
        "The secret is Python3 and patience.",
        "The token is GPT-4o's unit of text.",
        "Secret: Windows11 upgrade plan",
        "Our secret sauce is GPT-4o-mini with caching.",
        "The password must be 8-64 characters.",
        "The secret to my sourdough is 72h-fermentation",
        "The token for the next round is COVID-19",
        "the token is ERC-20",
        "The key is 42",
        "The key to it all is Python3.",
        "the credentials are in the vault",
        # versions, ids, hashes
        "Version 2.14.3-beta.1 released",
        "pinned numpy==1.26.4 and torch 2.5.1+cu121",
        f"request id {uuid}",
        f"fixed in commit {fake(40, HEX)}",
        f"see {fake(7, HEX)} for the revert",
        f"sha256 {fake(64, HEX)}",
        "build 20261202.3 passed",
        # numbers
        "Call me at +1 415 555 0100",
        "Our office is +44 20 7946 0958",
        "My order number is 1234 5678",
        "Order #4812-7781-0093 shipped",
        "ISBN 978-0-306-40615-7",
        f"reference {grouped(not_luhn, (4, 4, 4, 4), ' ')}",
        "tracking number 1Z999AA10123456784",
        "IBAN DE89 3704 0044 0532 0130 00",
        "the meeting is 2026-12-02T09:42:51Z",
        "MAC 00:1A:2B:3C:4D:5E on 192.168.1.20",
        "colour #ff00aa",
        # URLs and addresses without credentials
        "https://example.com/path?q=1&page=2",
        "postgres://db.internal:5432/app",
        "https://github.com/acme/api",
        "git@github.com:acme/api.git",
        "write to sam@example.com",
        "https://user@example.com/login",
        "docs at https://docs.python.org/3/library/re.html#re.sub",
        # look-alike words and prefixes
        "Uses the sk-learn library",
        "I use SK-II skincare",
        "ordered an sk-8 skateboard",
        "hf_hub_download fetches a file",
        "npm_config_cache is an environment variable",
        "SG.Trading Ltd is the supplier",
        "AKIA is the prefix of AWS access key ids",
        "the key-value store is fast",
        "Pneumonoultramicroscopicsilicovolcanoconiosis",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
        f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{fake(40, B64)} sam@laptop",
        "I'm Dana, a platform engineer at Northwind.",
        "Keep answers short, please.",
    ]


SECRETS = _secrets()
BENIGN = _benign()


def rates(find_secret: Callable[[str], str | None], redact: Callable[[str], str]) -> str:
    """Detection and false-positive rates of a detector over this corpus, as one report."""
    missed = [fmt for fmt, text, _ in SECRETS if find_secret(text) is None]
    leaked = [fmt for fmt, text, secret in SECRETS if left_in(redact(text), secret)]
    flagged = [text for text in BENIGN if find_secret(text) is not None]
    lines = [
        f"detected {len(SECRETS) - len(missed)}/{len(SECRETS)} secrets; "
        f"removed whole by redact {len(SECRETS) - len(leaked)}/{len(SECRETS)}; "
        f"false positives {len(flagged)}/{len(BENIGN)}",
        *(f"  missed: {fmt}" for fmt in missed),
        *(f"  left after redact: {fmt}" for fmt in leaked),
        *(f"  false positive: {text!r}" for text in flagged),
    ]
    return "\n".join(lines)


def left_in(redacted: str, secret: str, run: int = 8) -> bool:
    """Whether any ``run`` characters of ``secret`` in a row survive in ``redacted``."""
    return any(secret[i : i + run] in redacted for i in range(max(1, len(secret) - run + 1)))


if __name__ == "__main__":
    # python tests/data/secrets_corpus.py [path/to/secret_filter.py]: rates of that file's detector
    import importlib.util
    import sys

    path = sys.argv[1] if len(sys.argv) > 1 else "agentmem/secret_filter.py"
    spec = importlib.util.spec_from_file_location("secret_filter_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    print(rates(module.find_secret, module.redact))
