"""Gateway-level error bodies shared by both dialects: WAF captcha pages and 5xx HTML pages."""

from __future__ import annotations

CAPTCHA_HTML = '<script>window._config_ = {"action":"captcha"};</script><!--rgv587_flag:sm-->'
"""The Alibaba WAF captcha answer (HTTP 200, text/html) seen when Origin/Referer are missing."""

WAF_BUSY = "RGV587_ERROR::SM::哎哟喂,被挤爆啦,请稍后重试"
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


def punish_url(base: str, *, slider: bool = False) -> str:
    """The WAF challenge URL of a `ret` body."""
    if slider:
        return f"{base}/_____tmd_____/punish?x5secdata=x&action=captchaconnect"
    return f"{base}/_____tmd_____/punish?x5secdata=x&x5step=2&action=captcha&pureCaptcha="


def gateway_page(status: int) -> str:
    """An HTML error page of the edge gateway; the 504 one names alibaba-ga in its footer."""
    titles = {
        500: "500 Internal Server Error",
        502: "502 Bad Gateway",
        503: "503 Service Temporarily Unavailable",
        504: "504 Gateway Time-out",
    }
    title = titles.get(status, f"{status} Error")
    footer = "alibaba-ga" if status == 504 else "Tengine"
    return (
        "<!DOCTYPE html>\n<html>\n<head><title>"
        + title
        + "</title></head>\n<body>\n<center><h1>"
        + title
        + "</h1></center>\n<hr><center>"
        + footer
        + "</center>\n</body>\n</html>\n"
    )
