"""The manifest's ``encode`` record in words: how the cache was encoded (precision, device) and
what that cost against fp32, for the CLI summary and the page header."""
from __future__ import annotations


def describe_settings(settings: dict | None) -> str:
    """One line for the CLI summary and the app header: 'fp32 on cpu (AMD EPYC ...)', or with
    the measured cost 'bf16 + compile on cuda (...) · 10-NN agreement with fp32 0.74,
    z within 23 % (1,000 clips)'; '' without settings."""
    if not settings:
        return ""
    mode = str(settings.get("precision", "?")) + (" + compile" if settings.get("compile") else "")
    line = f"{mode} on {settings.get('device', '?')} ({settings.get('device_name', '?')})"
    check = settings.get("agreement")
    if isinstance(check, dict) and {"k", "knn_agreement", "max_relative_error", "n"} <= set(check):
        line += (f" · {check['k']}-NN agreement with fp32 {check['knn_agreement']:.2f}, "
                 f"z within {100 * check['max_relative_error']:.1f} % ({check['n']:,} clips)")
    return line


def short_settings(settings: dict | None) -> str:
    """The header badge: 'fp32 · cpu', 'bf16 + compile · cuda · 10-NN vs fp32 0.74';
    '' without settings."""
    if not settings:
        return ""
    text = (str(settings.get("precision", "?")) + (" + compile" if settings.get("compile") else "")
            + f" · {settings.get('device', '?')}")
    check = settings.get("agreement")
    if isinstance(check, dict) and {"k", "knn_agreement"} <= set(check):
        text += f" · {check['k']}-NN vs fp32 {check['knn_agreement']:.2f}"
    return text
