"""The operator console, clicked through in a real browser against the real gateway and the fake upstream."""

from __future__ import annotations

import requests
from playwright.sync_api import Browser, Page, expect

from app.keys import key_id
from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import ADMIN_TOKEN, TOKEN, GatewayHandle

from .conftest import KEYS, login, new_page, shot

BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}


def row(page: Page, kid: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#keys tr[data-id="{kid}"]')


def test_wrong_token_and_client_token_are_refused(browser: Browser, gw: GatewayHandle) -> None:
    page = new_page(browser)
    login(page, gw.url, "not-the-admin-token")
    expect(page.locator("#login-error")).to_contain_text("not the admin token")
    login(page, gw.url, TOKEN)
    expect(page.locator("#login-error")).to_contain_text("client token never opens")
    expect(page.locator("#app")).to_be_hidden()
    assert not page.context.cookies()
    shot(page, "refused")
    page.context.close()


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(console: Page, gw: GatewayHandle) -> None:
    expect(console.locator("#keys tbody tr")).to_have_count(len(KEYS))
    [cookie] = console.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    # The cookie alone opens the admin API for reads; a change without the console's header is refused.
    jar = {cookie["name"]: cookie["value"]}
    assert requests.get(gw.url + "/admin/api/keys", cookies=jar, timeout=5).status_code == 200
    assert requests.post(gw.url + "/admin/api/keys", cookies=jar, json={"keys": "ok-x"}, timeout=5).status_code == 401
    console.click("#logout")
    expect(console.locator("#login-view")).to_be_visible()
    assert not console.context.cookies()


def test_a_key_cools_after_a_429_and_comes_back(console: Page, gw: GatewayHandle,
                                                 fake_upstream: FakeHandle) -> None:
    fake_upstream.script(KEYS[0], "rpm", times=2, retry_delay=6)  # the call rotates to the other key
    for _ in range(2):
        assert requests.post(gw.v1 + "/chat/completions", json=BODY, headers=gw.headers(), timeout=10).ok
    console.reload()
    first = row(console, key_id(KEYS[0]))
    expect(first.locator(".state")).to_have_text("cooling")
    expect(first.locator(".cd")).to_have_count(1)
    shot(console, "pool-cooling")
    expect(first.locator(".state")).to_have_text("active", timeout=20_000)  # auto refresh brings it back


def test_paste_three_keys_delete_one_and_check_an_invalid_key(console: Page) -> None:
    pasted = ["ok-pasted-a1", "ok-pasted-b2", "invalid-pasted-c3"]
    console.click("#tab-pool summary")
    console.fill("#paste", "\n".join(pasted))
    console.click("#add-keys")
    expect(console.locator("#flash")).to_contain_text("added 3")
    for key in pasted:
        expect(row(console, key_id(key))).to_have_count(1)
    row(console, key_id(pasted[1])).locator("button[data-act=delete]").click()
    expect(console.locator("#flash")).to_contain_text("deleted")
    expect(row(console, key_id(pasted[1]))).to_have_count(0)

    bad = row(console, key_id(pasted[2]))
    bad.locator("button[data-act=check]").click()
    expect(console.locator("#flash")).to_contain_text("key_invalid")
    expect(bad.locator(".state")).to_have_text("disabled")
    expect(bad.locator(".reason")).not_to_be_empty()
    console.select_option("#f-state", "disabled")
    expect(console.locator("#keys tbody tr")).to_have_count(1)
    shot(console, "pool-checked")


def test_create_a_token_and_see_its_secret_once(console: Page, gw: GatewayHandle) -> None:
    console.click("#tabs button[data-tab=tokens]")
    console.fill("#t-name", "ci-bot")
    console.fill("#t-models", "gemini-2.5-*")
    console.fill("#t-rpm", "30")
    console.click("#t-save")
    secret = console.locator("#secret-value")
    expect(secret).to_have_text(__import__("re").compile(r"\S{16,}"))
    value = secret.inner_text()
    ok = requests.post(gw.v1 + "/chat/completions", json=BODY, timeout=10,
                       headers={"Authorization": f"Bearer {value}"})
    assert ok.status_code == 200
    shot(console, "token-created")
    token_row = console.locator("#tokens tbody tr", has_text="ci-bot")
    expect(token_row).to_contain_text("rpm 30")
    token_row.locator("button[data-act=edit]").click()
    expect(console.locator("#secret")).to_be_hidden()  # shown once: never again
    console.fill("#t-rpm", "5")
    console.click("#t-save")
    expect(token_row).to_contain_text("rpm 5")
    assert value not in console.content()
    token_row.locator("button[data-act=disable]").click()
    expect(token_row).to_contain_text("disabled")
    refused = requests.post(gw.v1 + "/chat/completions", json=BODY, timeout=10,
                            headers={"Authorization": f"Bearer {value}"})
    assert refused.status_code == 401


def test_usage_chart_and_error_log_fill_after_traffic(console: Page, gw: GatewayHandle,
                                                       fake_upstream: FakeHandle) -> None:
    fake_upstream.script(KEYS[1], "rpd", times=1)
    for _ in range(3):
        requests.post(gw.v1 + "/chat/completions", json=BODY, headers=gw.headers(), timeout=10)
    console.click("#tabs button[data-tab=usage]")
    expect(console.locator("#chart-requests rect.req").first).to_be_visible()
    expect(console.locator("#chart-tokens rect.tok").first).to_be_visible()
    shot(console, "usage")
    console.click("#tabs button[data-tab=errors]")
    expect(console.locator("#errors tbody tr td.err").first).to_be_visible()
    console.select_option("#e-class", "quota_exhausted")
    expect(console.locator("#errors tbody tr td.err").first).to_have_text("quota_exhausted")
    shot(console, "errors")
    console.click("#tabs button[data-tab=settings]")
    expect(console.locator("#settings")).to_contain_text("auth_token")
    assert "sk-test-admin-token" not in console.content()


def test_a_phone_viewport_stays_usable(browser: Browser, gw: GatewayHandle) -> None:
    page = new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(page, gw.url)
    expect(page.locator("#keys tbody tr").first).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"
    check = page.locator("#keys tbody tr").first.locator("button[data-act=check]")
    expect(check).to_be_visible()
    page.click("#tabs button[data-tab=tokens]")
    expect(page.locator("#t-name")).to_be_visible()
    shot(page, "phone")
    page.context.close()


def test_edit_a_keys_weight_tier_model_lists_and_proxy(console: Page, gw: GatewayHandle) -> None:
    kid = key_id(KEYS[1])
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    key_row = row(console, kid)
    expect(key_row.locator(".route")).to_contain_text("gemini")
    expect(key_row.locator(".route")).to_contain_text("direct")
    expect(key_row.locator(".share")).to_contain_text("weight 1 · tier 1")
    try:
        key_row.locator("button[data-act=edit]").click()
        expect(console.locator("#key-form")).to_be_visible()
        expect(console.locator("#k-title")).to_have_text(kid)
        console.fill("#k-models", "gemini-2.5-*, bad;pattern")
        console.click("#k-save")
        expect(console.locator("#flash")).to_contain_text("'models'")  # refused, naming the field
        console.fill("#k-weight", "3")
        console.fill("#k-tier", "2")
        console.fill("#k-models", "gemini-2.5-*, gemini-3-*")
        console.fill("#k-exclude", "*-pro")
        console.fill("#k-proxy", "http://op:hidden-pw@127.0.0.1:3128")
        console.click("#k-save")
        expect(console.locator("#flash")).to_contain_text("saved")
        expect(console.locator("#key-form")).to_be_hidden()
        expect(key_row.locator(".share")).to_contain_text("weight 3 · tier 2")
        expect(key_row.locator(".share")).to_contain_text("models: gemini-2.5-*, gemini-3-*")
        expect(key_row.locator(".share")).to_contain_text("not: *-pro")
        expect(key_row.locator(".route")).to_contain_text("http://127.0.0.1:3128")
        assert "hidden-pw" not in console.content()
        stored = {r["id"]: r for r in requests.get(gw.url + "/admin/api/keys", headers=admin,
                                                   timeout=10).json()["keys"]}[kid]
        assert (stored["weight"], stored["tier"], stored["models"], stored["exclude_models"]) == (
            3, 2, ["gemini-2.5-*", "gemini-3-*"], ["*-pro"])
        shot(console, "pool-weights")
        # A second edit sends only what changed: values shown from the settings are not pinned to the key.
        key_row.locator("button[data-act=edit]").click()
        console.fill("#k-weight", "2")
        with console.expect_request(lambda r: r.method == "PATCH") as sent:
            console.click("#k-save")
        assert sent.value.post_data_json == {"weight": 2}
        expect(key_row.locator(".share")).to_contain_text("weight 2 · tier 2")
    finally:  # the module's other tests rotate over both keys: back to the settings
        reset = {"weight": None, "tier": None, "models": None, "exclude_models": None, "proxy": None, "kind": None}
        assert requests.patch(gw.url + f"/admin/api/keys/{kid}", headers=admin, json=reset, timeout=10).ok
