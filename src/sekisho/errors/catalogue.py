"""Every error a person can meet, with a stable code, its HTTP status, ja/en text and remedy.

Codes are the contract (CONTRACT.md); texts may be improved freely. Tests assert codes.
``public`` marks errors that may be shown before authentication: they must never reveal
whether an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    status: int
    message: dict[str, str]
    remedy: dict[str, str]
    public: bool = True

    def text(self, locale: str, params: dict[str, Any]) -> tuple[str, str]:
        lang = locale if locale in self.message else "ja"
        return fill(self.message[lang], params), fill(self.remedy[lang], params)


def fill(template: str, params: dict[str, Any]) -> str:
    """``str.format_map`` where a missing parameter renders as nothing instead of failing."""
    return template.format_map(_Defaulting(params))


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


class SekishoError(Exception):
    """Raised anywhere below the routes; rendered by :mod:`sekisho.errors.handler`.

    ``reference`` is set when the raiser already recorded the event behind the error
    (a login failure, say); otherwise the handler records one.
    """

    def __init__(self, code: str, *, retry_after: int | None = None, field: str | None = None,
                 params: dict[str, Any] | None = None, reference: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"unknown error code {code!r}")
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.field = field
        self.params = params or {}
        self.reference = reference
        self.extra = extra or {}
        """Additional members of the JSON error object (``newest_sent_at``, ``methods``...)."""

    @property
    def spec(self) -> ErrorSpec:
        return CATALOGUE[self.code]


def _e(code: str, status: int, ja: str, en: str, remedy_ja: str, remedy_en: str,
       public: bool = True) -> ErrorSpec:
    return ErrorSpec(code, status, {"ja": ja, "en": en}, {"ja": remedy_ja, "en": remedy_en}, public)


_SPECS = [
    # --- login ----------------------------------------------------------------------------
    _e("login.invalid_credentials", 401,
       "ログインIDまたはパスワードが正しくありません。",
       "The login ID or password is not correct.",
       "入力内容をご確認ください。パスワードを忘れた場合は「パスワードを再設定」から再設定できます。",
       "Check what you typed. If you forgot your password, use \"Reset password\"."),
    _e("login.throttled", 429,
       "ログインの試行が多すぎるため、一時的にログインを止めています。",
       "Too many login attempts: logging in is paused for now.",
       "{retry_minutes}分後にもう一度お試しください。登録メールアドレスに届くメールからすぐに解除することもできます。",
       "Try again in {retry_minutes} minutes, or use the unlock link in the mail we sent you."),
    _e("login.password_disabled", 403,
       "このアカウントのパスワードによるログインは停止されています。",
       "Password login is disabled for this account.",
       "「パスワードを再設定」から新しいパスワードを設定すると、再びログインできます。",
       "Set a new password with \"Reset password\" to log in again."),
    _e("login.flow_expired", 410,
       "このログインの手続きは終了しました。",
       "This login can no longer be completed.",
       "時間切れか、確認コードの入力に続けて失敗しました。もう一度ログインしてください。",
       "It timed out or had too many wrong codes. Please log in again."),
    _e("second_factor.invalid_code", 400,
       "コードが正しくありません。",
       "The code is not correct.",
       "認証アプリに今表示されているコード、または未使用のリカバリーコードを入力してください。端末の時刻が自動設定になっているかもご確認ください。",
       "Enter the code your authenticator app shows now, or an unused recovery code. Check that "
       "the device's clock is set automatically."),
    _e("passkey.invalid", 400,
       "パスキーで確認できませんでした。",
       "The passkey could not be verified.",
       "もう一度お試しください。うまくいかない場合は、パスワードでログインしてください。",
       "Try again. If it keeps failing, log in with your password."),
    _e("second_factor.not_found", 404,
       "この認証方法は登録されていません。",
       "This sign-in method is not registered.",
       "アカウントのページで、登録済みの認証方法をご確認ください。",
       "Check your registered sign-in methods on the account page.", public=False),
    # --- status ---------------------------------------------------------------------------
    _e("incident.not_found", 404,
       "障害情報が見つかりません。", "The incident was not found.",
       "番号をご確認ください。", "Check the incident number.", public=False),
    _e("incident.resolved", 409,
       "この障害はすでに解決済みです。", "This incident is already resolved.",
       "問題が再発した場合は、新しい障害として登録してください。",
       "If the problem is back, open a new incident.", public=False),
    # --- account --------------------------------------------------------------------------
    _e("account.unverified", 403,
       "メールアドレスの確認が完了していません。",
       "Your email address has not been confirmed yet.",
       "登録時にお送りしたメールの確認コードを入力するか、確認メールを再送してください。",
       "Enter the code from the confirmation mail, or have it sent again."),
    _e("account.suspended", 403,
       "このアカウントは利用停止中です。",
       "This account is suspended.",
       "サポートにお問い合わせ番号をお伝えください。",
       "Contact support and give them the reference below."),
    _e("account.dormant", 403,
       "このアカウントは長期間ご利用がないため休止中です。",
       "This account is dormant after a long time without use.",
       "「パスワードを再設定」から本人確認を行うと、再びご利用いただけます。",
       "Confirm it is you with \"Reset password\" to use the account again."),
    _e("account.contact_taken", 409,
       "このメールアドレスまたは電話番号は、別のアカウントで登録されています。",
       "This address or number is registered to another account.",
       "別のメールアドレスまたは電話番号をお使いください。元のアカウントをお持ちの場合は、そちらにログインしてください。",
       "Use another address or number, or log in to the account it belongs to.",
       public=False),
    _e("account.not_found", 404,
       "アカウントが見つかりません。",
       "The account was not found.",
       "番号をご確認ください。",
       "Check the number and try again.", public=False),
    # --- passwords ------------------------------------------------------------------------
    _e("password.too_short", 422,
       "パスワードが短すぎます。{min_length}文字以上にしてください。",
       "The password is too short: use at least {min_length} characters.",
       "長めの文やいくつかの単語の組み合わせは覚えやすく安全です。",
       "A short sentence or a few unrelated words is easy to remember and hard to guess."),
    _e("password.too_long", 422,
       "パスワードが長すぎます。{max_length}文字以下にしてください。",
       "The password is too long: use at most {max_length} characters.",
       "{max_length}文字以下のパスワードを選んでください。",
       "Choose a password of at most {max_length} characters."),
    _e("password.too_common", 422,
       "このパスワードはよく使われていて、推測されやすいため使えません。",
       "This password is widely used and easy to guess, so it cannot be used.",
       "ほかのサービスで使っていない、別のパスワードを選んでください。",
       "Choose another password that you do not use anywhere else."),
    _e("password.too_personal", 422,
       "パスワードにメールアドレス・会員番号・サービス名が含まれています。",
       "The password is based on your email, member ID or the service name.",
       "ご自身の情報やサービス名を含まない、別のパスワードを選んでください。",
       "Choose a password that does not contain your details or the service name."),
    _e("password.incorrect", 401,
       "現在のパスワードが正しくありません。",
       "The current password is not correct.",
       "現在お使いのパスワードを入力してください。",
       "Enter the password you use now.", public=False),
    # --- codes and links ------------------------------------------------------------------
    _e("code.invalid", 400,
       "確認コードが正しくありません。",
       "The code is not correct.",
       "最後に届いたメールのコードを入力してください(残り{attempts_left}回)。",
       "Enter the code from the most recent message ({attempts_left} tries left)."),
    _e("code.expired", 410,
       "確認コードの有効期限が切れています。",
       "The code has expired.",
       "新しいコードを送信して、届いたコードを入力してください。",
       "Have a new code sent and enter that one."),
    _e("code.too_many_attempts", 429,
       "確認コードの入力に続けて失敗したため、このコードは使えなくなりました。",
       "Too many wrong entries: this code can no longer be used.",
       "新しいコードを送信してください。",
       "Have a new code sent."),
    _e("code.resend_too_soon", 429,
       "コードを送信したばかりです。",
       "A code was sent moments ago.",
       "届くまで少しお待ちください。{retry_after}秒後に再送できます。",
       "Give it a moment to arrive; you can resend in {retry_after} seconds."),
    _e("link.expired", 410,
       "このリンクの有効期限が切れています。",
       "This link has expired.",
       "新しいリンクを送信してください。",
       "Have a new link sent."),
    _e("link.used", 410,
       "このリンクはすでに使用されています。",
       "This link has already been used.",
       "もう一度必要な場合は、新しいリンクを送信してください。",
       "If you still need it, have a new link sent."),
    _e("link.superseded", 410,
       "より新しいメールが送信されたため、このリンクは使えません。",
       "A newer message was sent, so this link no longer works.",
       "{newest_sent_at}に送信した最新のメールのリンクをお使いください。",
       "Use the link in the newest message, sent at {newest_sent_at}."),
    # --- service --------------------------------------------------------------------------
    _e("service.maintenance", 503,
       "ただいまメンテナンス中です。",
       "We are down for maintenance.",
       "{ends_at}に終了予定です。終了後にもう一度お試しください。",
       "It is planned to end at {ends_at}. Please try again then."),
    _e("service.busy", 503,
       "ただいま混み合っています。",
       "We are very busy right now.",
       "{retry_after}秒ほど待ってからもう一度お試しください。入力内容はそのままで大丈夫です。",
       "Wait {retry_after} seconds and try again; what you entered is fine."),
    _e("service.queue", 429,
       "ただいま混み合っているため、順番にご案内しています。",
       "It is busy right now, so we are letting people in in turn.",
       "このままお待ちください。順番が来ると自動で先に進みます。再読み込みしても、別のタブで開いても、順番は変わりません。",
       "Please stay: you go through automatically when it is your turn. Reloading or "
       "opening more tabs keeps your place."),
    _e("service.unavailable", 503,
       "一時的にサービスを利用できません。",
       "The service is temporarily unavailable.",
       "しばらくしてからもう一度お試しください。",
       "Please try again in a little while."),
    _e("service.error", 500,
       "予期しないエラーが発生しました。",
       "Something went wrong on our side.",
       "しばらくしてからもう一度お試しください。解決しない場合はお問い合わせ番号をサポートにお伝えください。",
       "Please try again shortly. If it keeps happening, give support the reference below."),
    # --- requests -------------------------------------------------------------------------
    _e("request.invalid", 422,
       "入力内容に誤りがあります({field_label})。",
       "Something in the request is not valid ({field_label}).",
       "{reason_text}",
       "{reason_text}"),
    _e("request.rate_limited", 429,
       "短い時間に同じ操作が続いたため、少しお待ちいただいています。",
       "The same action came too often in a short time, so we are pausing it.",
       "{retry_after}秒後にもう一度お試しください。",
       "Please try again in {retry_after} seconds."),
    _e("request.unsupported_media_type", 415,
       "リクエストの形式に対応していません。",
       "This request format is not supported.",
       "Content-Type: application/json で送信してください。",
       "Send the body as Content-Type: application/json."),
    _e("request.csrf_failed", 403,
       "画面の有効期限が切れました。",
       "This form has expired.",
       "ページを再読み込みしてから、もう一度送信してください。",
       "Reload the page and send the form again."),
    _e("request.idempotency_mismatch", 422,
       "このIdempotency-Keyは、内容の異なる別のリクエストで使われています。",
       "This Idempotency-Key was already used for a different request.",
       "新しい操作には新しいキーを付けてください。やり直す場合は、最初と同じ内容で送信してください。",
       "Use a new key for a new request; to retry, send exactly the same request again."),
    _e("request.idempotency_in_progress", 409,
       "同じIdempotency-Keyのリクエストをまだ処理しています。",
       "A request with this Idempotency-Key is still being processed.",
       "{retry_after}秒ほど待ってから、同じ内容でもう一度送信してください。",
       "Wait {retry_after} seconds, then send the same request again."),
    _e("request.not_found", 404,
       "ページが見つかりません。",
       "Page not found.",
       "アドレスをご確認ください。",
       "Check the address."),
    _e("request.method_not_allowed", 405,
       "この操作はできません。",
       "This method is not allowed here.",
       "アドレスと操作をご確認ください。",
       "Check the address and method."),
    _e("auth.required", 401,
       "ログインが必要です。",
       "You need to log in.",
       "ログインしてからもう一度お試しください。",
       "Log in and try again."),
    _e("auth.step_up_required", 403,
       "この操作には、もう一度本人確認が必要です。",
       "This action needs you to confirm it is you again.",
       "パスワードを入力して本人確認を行ってください。",
       "Confirm with your password to continue.", public=False),
    _e("auth.forbidden", 403,
       "この操作を行う権限がありません。",
       "You are not allowed to do this.",
       "管理者にお問い合わせください。",
       "Ask an administrator.", public=False),
    _e("oidc.invalid_request", 400,
       "連携先のサービスから届いたログインの要求を受け付けられませんでした。",
       "The sign-in request from the service that sent you here could not be accepted.",
       "元のアプリやサイトに戻り、もう一度ログインしてください。続く場合は、そのサービスの窓口にこのお問い合わせ番号をお伝えください。",
       "Go back to the app or site and sign in again from there. If it keeps happening, give "
       "this reference to that service's support."),
    _e("oidc.app_update_required", 400,
       "お使いのアプリのバージョンではログインできません。",
       "This version of the app can no longer sign in.",
       "アプリを最新版に更新してから、もう一度ログインしてください。",
       "Update the app to its latest version, then sign in again."),
    _e("oidc.second_factor_needed", 403,
       "このサービスは2段階認証でのログインを求めていますが、まだ2段階認証が設定されていません。",
       "This service asks for two-step sign-in, and your account has no second step yet.",
       "アカウント設定で認証アプリかパスキーを登録してから、もう一度お試しください。",
       "Add an authenticator app or a passkey in your account settings, then try again.",
       public=False),
    _e("oidc.client_not_found", 404,
       "そのクライアントは登録されていません。",
       "There is no client with this ID.",
       "client_id を確かめてください。",
       "Check the client_id.", public=False),
    _e("oidc.link_not_found", 404,
       "そのサービスとは連携していません。",
       "Your account is not linked to this service.",
       "連携中のサービスの一覧を開き直してください。",
       "Open the list of linked services again.", public=False),
]

CATALOGUE: dict[str, ErrorSpec] = {spec.code: spec for spec in _SPECS}

# Why a ``request.invalid`` was raised: stable sub-codes (``reason``) with their remedy.
REASONS: dict[str, dict[str, str]] = {
    "missing": {"ja": "入力してください。", "en": "Fill this in."},
    "invisible_character": {
        "ja": "目に見えない文字や制御文字が含まれています。手で入力し直してください。",
        "en": "It contains an invisible or control character. Please type it again by hand.",
    },
    "not_an_email": {
        "ja": "メールアドレスの形式ではありません(例: taro@example.jp)。",
        "en": "This is not an email address (for example taro@example.jp).",
    },
    "unknown_identifier_format": {
        "ja": "メールアドレス、会員番号(10桁)、カード番号(16桁)、電話番号のいずれかを入力してください。",
        "en": "Enter your email, member ID (10 digits), card number (16 digits) or phone number.",
    },
    "too_long": {"ja": "長すぎます。", "en": "It is too long."},
    "wrong_type": {"ja": "形式が正しくありません。", "en": "The value has the wrong type."},
    "malformed_json": {
        "ja": "JSONとして読み取れません。",
        "en": "The body is not valid JSON.",
    },
    "not_digits": {
        "ja": "数字で入力してください。",
        "en": "Enter digits only.",
    },
    "wrong_length": {
        "ja": "{length}桁の数字を入力してください。",
        "en": "Enter the {length}-digit code.",
    },
    "not_a_recovery_code": {
        "ja": "リカバリーコードは英数字13文字です(ハイフンや空白は入れても入れなくても構いません)。",
        "en": "A recovery code has 13 letters and digits (hyphens and spaces are optional).",
    },
    "method_unavailable": {
        "ja": "この方法は、このアカウントでは使えません。表示されている方法から選んでください。",
        "en": "This method is not available for this account; choose one of those offered.",
    },
    "same_as_current": {
        "ja": "現在登録されているものと同じです。",
        "en": "This is the one already registered.",
    },
    "email_or_phone": {
        "ja": "メールアドレスか電話番号を入力してください(例: hanako@example.jp、090-1234-5678)。",
        "en": "Enter an email address or a phone number (for example hanako@example.jp or "
              "090-1234-5678).",
    },
    "not_a_phone_number": {
        "ja": "電話番号の形式ではありません(例: 090-1234-5678)。",
        "en": "This is not a phone number (for example 090-1234-5678).",
    },
    "out_of_range": {
        "ja": "指定できる範囲を超えています。",
        "en": "The value is outside the range allowed here.",
    },
    "ends_before_start": {
        "ja": "終了日時は開始日時より後にしてください。",
        "en": "The end must come after the start.",
    },
    "unknown_component": {
        "ja": "login、registration、email、sms、second_factors のいずれかを指定してください。",
        "en": "Use login, registration, email, sms or second_factors.",
    },
}

# How fields are named to people.
FIELD_LABELS: dict[str, dict[str, str]] = {
    "identifier": {"ja": "ログインID", "en": "login ID"},
    "email": {"ja": "メールアドレス", "en": "email address"},
    "password": {"ja": "パスワード", "en": "password"},
    "new_password": {"ja": "新しいパスワード", "en": "new password"},
    "phone": {"ja": "電話番号", "en": "phone number"},
    "contact": {"ja": "メールアドレスまたは電話番号", "en": "email address or phone number"},
    "current_password": {"ja": "現在のパスワード", "en": "current password"},
    "display_name": {"ja": "お名前", "en": "name"},
    "code": {"ja": "確認コード", "en": "code"},
    "token": {"ja": "リンク", "en": "link"},
    "body": {"ja": "リクエスト", "en": "request"},
    "idempotency_key": {"ja": "Idempotency-Keyヘッダー", "en": "Idempotency-Key header"},
}
