"""Whether an answer is a block: what ``retry_on_block`` retries and ``potentiallyBlockedByCaptcha`` reports.

A block is a 403 or 429 status, or a page carrying a bot-check's marker. The markers are the script
hosts, widget classes and interstitial titles of the common providers, matched case-insensitively in
the HTML: reCAPTCHA (``g-recaptcha``, ``google.com/recaptcha``), hCaptcha (``h-captcha``,
``hcaptcha.com``), Cloudflare (``challenges.cloudflare.com``, ``cf-turnstile``, ``__cf_chl_``, the
"Just a moment..." and "Attention Required! | Cloudflare" titles), DataDome (``captcha-delivery.com``),
PerimeterX/HUMAN (``px-captcha``) and Arkose (``arkoselabs.com``, ``funcaptcha``).
"""

from __future__ import annotations

BLOCK_RETRIES = 3  # "up to 3 retries", after the first try
BLOCKING_STATUSES = frozenset({403, 429})
CAPTCHA_MARKERS: dict[str, tuple[str, ...]] = {
    "recaptcha": ("g-recaptcha", "google.com/recaptcha", "recaptcha.net/recaptcha"),
    "hcaptcha": ("h-captcha", "hcaptcha.com"),
    "cloudflare": (
        "challenges.cloudflare.com",
        "cf-turnstile",
        "__cf_chl_",
        "<title>just a moment...</title>",
        "attention required! | cloudflare",
    ),
    "datadome": ("captcha-delivery.com",),
    "perimeterx": ("px-captcha",),
    "arkose": ("arkoselabs.com", "funcaptcha"),
}


def captcha_provider(html: str | None) -> str | None:
    """The bot-check provider whose marker ``html`` carries, if any."""
    if not html:
        return None
    lowered = html.lower()
    for provider, markers in CAPTCHA_MARKERS.items():
        if any(marker in lowered for marker in markers):
            return provider
    return None


def block_reason(status: int | None, html: str | None) -> str | None:
    """``"http_403"``, ``"http_429"``, ``"captcha:<provider>"``, or None when the answer is not a block."""
    if status in BLOCKING_STATUSES:
        return f"http_{status}"
    provider = captcha_provider(html)
    return None if provider is None else f"captcha:{provider}"
