//! The web console in a real headless Chromium, driven over WebDriver (fantoccini and
//! Debian's chromedriver) against a real `pemba serve` on loopback: the admin's group
//! flow, a viewer's view, a removed member losing access, and a name that looks like
//! HTML shown as text. Elements are found by their role and accessible name (button and
//! link text, label text, dialog headings), as a user finds them. Every screen is saved
//! under `TARGET/console-screenshots/`. Without chromium and chromedriver this fails:
//! `.ci/run` installs them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::process::{agent, ServeProcess, PROCESS_KEY};

const WAIT: Duration = Duration::from_secs(10);
/// How often an action is retried on an element a redraw replaced.
const STALE_RETRIES: usize = 20;
const XSS: &str = "<img src=x onerror=alert(1)>";

/// The API as the seed and the assertions use it (not through the browser).
struct Api {
    base: String,
}

impl Api {
    fn send(
        &self,
        method: &str,
        path: &str,
        actor: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {PROCESS_KEY}"));
        if let Some(actor) = actor {
            request = request.header("Pemba-Actor", actor);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut response = agent(Duration::from_secs(10))
            .run(request.body(body).unwrap())
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    #[track_caller]
    fn ok(&self, method: &str, path: &str, actor: Option<&str>, body: Option<Value>) -> Value {
        let (status, answer) = self.send(method, path, actor, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// May `user` use the connection whose engine object is `connection`?
    fn may_use(&self, connection: &Value, user: &str) -> bool {
        let answer = self.ok(
            "POST",
            "/v1/permissions/check",
            None,
            Some(json!({
                "consistency": {"fullyConsistent": true},
                "resource": connection, "permission": "use",
                "subject": {"object": {"objectType": "user", "objectId": user}},
            })),
        );
        answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"
    }
}

/// chromedriver on a free loopback port, in a process group of its own, which the
/// Chromium it starts joins. Dropping it kills the whole group, so however the test ends
/// (a failed assertion unwinds through here too) no browser is left running; the
/// browser's profile is a temporary directory removed after that.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_string());
        let mut command = Command::new(&program);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{program}` ({e}): install chromium and chromium-driver (apt-get install -y chromium chromium-driver), as .ci/run does")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        Driver {
            child,
            port,
            profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`); Chromium's crash
        // handlers, which start sessions of their own, exit with the browser.
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The target directory the test binary was built in (`CARGO_TARGET_DIR` respected).
fn screenshot_dir() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_pemba"));
    let target = binary
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_path_buf();
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// XPath string literal for `text` (no text here holds both quote kinds).
fn lit(text: &str) -> String {
    if text.contains('"') {
        format!("'{text}'")
    } else {
        format!("\"{text}\"")
    }
}

/// A button by accessible name (its text or aria-label).
fn button(name: &str) -> String {
    let n = lit(name);
    format!("//button[normalize-space(.)={n} or @aria-label={n}]")
}

/// The open dialog named `name` (by the heading it is labelled by).
fn dialog(name: &str) -> String {
    format!(
        "//dialog[@open and @aria-labelledby=//h2[normalize-space(.)={}]/@id]",
        lit(name)
    )
}

/// A form control by its label's text (label `for`) or aria-label.
fn control(label: &str) -> String {
    let n = lit(label);
    format!("//*[(self::input or self::select or self::textarea) and (@id=//label[normalize-space(.)={n}]/@for or @aria-label={n})]")
}

fn link(name: &str) -> String {
    format!("//a[normalize-space(.)={}]", lit(name))
}

fn heading(level: u8, name: &str) -> String {
    format!("//h{level}[normalize-space(.)={}]", lit(name))
}

struct Browser {
    client: Client,
    shots: PathBuf,
}

impl Browser {
    /// The first displayed element matching `xpath`, waiting up to [`WAIT`].
    async fn find(&self, xpath: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(found) = self.client.find_all(Locator::XPath(xpath)).await {
                for element in found {
                    if element.is_displayed().await.unwrap_or(false) {
                        return element;
                    }
                }
            }
            if Instant::now() > deadline {
                let text = self
                    .client
                    .find(Locator::Css("body"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!("no visible `{xpath}` within {WAIT:?}; the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until nothing visible matches `xpath`.
    async fn gone(&self, xpath: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut visible = false;
            for element in self.client.find_all(Locator::XPath(xpath)).await.unwrap() {
                visible |= element.is_displayed().await.unwrap_or(false);
            }
            if !visible {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{xpath}` still shown after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether anything visible matches `xpath` now (after the screen has settled).
    async fn shows(&self, xpath: &str) -> bool {
        for element in self.client.find_all(Locator::XPath(xpath)).await.unwrap() {
            if element.is_displayed().await.unwrap_or(false) {
                return true;
            }
        }
        false
    }

    /// Clicks what `xpath` finds. The console redraws a screen when a change arrives (the
    /// workspace's watch stream), so an element found a moment ago can be replaced before
    /// the click lands: a stale element is looked up again, a bounded number of times.
    async fn click(&self, xpath: &str) {
        for attempt in 1.. {
            match self.find(xpath).await.click().await {
                Ok(()) => return,
                Err(error) if error.is_stale_element_reference() && attempt < STALE_RETRIES => {}
                Err(error) => panic!("clicking `{xpath}`: {error}"),
            }
        }
    }

    async fn fill(&self, label: &str, text: &str) {
        self.fill_xpath(&control(label), text).await;
    }

    async fn fill_in(&self, scope: &str, label: &str, text: &str) {
        self.fill_xpath(&format!("{scope}{}", control(label)), text)
            .await;
    }

    /// Picks the option labelled `label` in the select `xpath` finds (see [`Self::click`]).
    async fn select_by_label(&self, xpath: &str, label: &str) {
        for attempt in 1.. {
            match self.find(xpath).await.select_by_label(label).await {
                Ok(()) => return,
                Err(error) if error.is_stale_element_reference() && attempt < STALE_RETRIES => {}
                Err(error) => panic!("choosing `{label}` in `{xpath}`: {error}"),
            }
        }
    }

    /// Picks the option with value `value` in the select `xpath` finds.
    async fn select_by_value(&self, xpath: &str, value: &str) {
        for attempt in 1.. {
            match self.find(xpath).await.select_by_value(value).await {
                Ok(()) => return,
                Err(error) if error.is_stale_element_reference() && attempt < STALE_RETRIES => {}
                Err(error) => panic!("choosing `{value}` in `{xpath}`: {error}"),
            }
        }
    }

    /// Replaces the text of the input `xpath` finds, looking it up again if a redraw
    /// replaced it (see [`Self::click`]).
    async fn fill_xpath(&self, xpath: &str, text: &str) {
        for attempt in 1.. {
            let input = self.find(xpath).await;
            let typed = match input.clear().await {
                Ok(()) => input.send_keys(text).await,
                Err(error) => Err(error),
            };
            match typed {
                Ok(()) => return,
                Err(error) if error.is_stale_element_reference() && attempt < STALE_RETRIES => {}
                Err(error) => panic!("typing into `{xpath}`: {error}"),
            }
        }
    }

    /// Waits until the page's text contains `text`.
    async fn sees(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self
                .client
                .find(Locator::Css("body"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if body.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed `{text}`; it shows:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the keyboard is: the name of the open dialog holding the focused element
    /// (empty outside one) and that element's accessible name (its label's text, or its
    /// own text for a button).
    async fn focus(&self) -> (String, String) {
        let found = self
            .client
            .execute(
                "const a = document.activeElement; const d = a.closest('dialog[open]'); \
                 const name = a.labels && a.labels.length ? a.labels[0].textContent : a.textContent; \
                 return [d ? d.querySelector('h2').textContent : '', name.trim()]",
                vec![],
            )
            .await
            .unwrap();
        let text = |i: usize| found[i].as_str().unwrap_or_default().to_string();
        (text(0), text(1))
    }

    /// Presses Escape where the focus is.
    async fn escape(&self) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&fantoccini::key::Key::Escape.to_string())
            .await
            .unwrap();
    }

    /// Opening the dialog `name` with `opener` puts the focus on `first` inside it, and
    /// Escape closes it, giving the focus back to the opener.
    async fn dialog_keyboard(&self, opener: &str, name: &str, first: &str) {
        self.click(&button(opener)).await;
        self.find(&dialog(name)).await;
        assert_eq!(
            self.focus().await,
            (name.to_string(), first.to_string()),
            "the focus on opening `{name}`"
        );
        self.escape().await;
        self.gone(&dialog(name)).await;
        assert_eq!(
            self.focus().await,
            (String::new(), opener.to_string()),
            "the focus after closing `{name}` with Escape"
        );
    }

    /// Asserts that the page does not scroll sideways (the window is narrow), and saves a
    /// screenshot as `name`.
    async fn narrow(&self, name: &str) {
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{name}: the page scrolls sideways by {overflow} px"
        );
        self.screenshot(name).await;
    }

    /// Marks the loaded page, so that [`Self::live`] can tell it was not reloaded.
    async fn mark_page(&self) {
        self.client
            .execute("window.pembaNotReloaded = true", vec![])
            .await
            .unwrap();
    }

    /// Waits for `xpath` to show, a change made elsewhere arriving, then checks that the
    /// page was not reloaded to show it (see [`Self::mark_page`]). How long it took is
    /// printed, not asserted (`--nocapture` shows it).
    async fn live(&self, xpath: &str) {
        let started = Instant::now();
        self.find(xpath).await;
        eprintln!("live update `{xpath}` shown after {:?}", started.elapsed());
        let marked = self
            .client
            .execute("return window.pembaNotReloaded === true", vec![])
            .await
            .unwrap();
        assert_eq!(marked, json!(true), "the page reloaded to show `{xpath}`");
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn sign_in(&self, key: &str, workspace: &str, actor: &str) {
        self.fill("API key", key).await;
        self.fill("Workspace", workspace).await;
        self.fill("Act as user", actor).await;
        self.click(&button("Sign in")).await;
    }

    async fn sign_out(&self) {
        self.click(&button("Sign out")).await;
        self.find(&heading(1, "Sign in")).await;
    }

    /// Ticks member `id` in the open dialog's member picker.
    async fn pick(&self, scope: &str, id: &str) {
        self.fill_in(scope, "Add members", id).await;
        let xpath = format!(
            "{scope}//label[starts-with(normalize-space(.), {})]/input[@type='checkbox']",
            lit(id)
        );
        self.click(&xpath).await;
    }
}

#[test]
fn console_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::spawn(data.path(), &[("RUST_LOG", "warn")], &[]);
    server
        .wait_healthy(Duration::from_secs(30))
        .expect("server healthy");
    let api = Api {
        base: server.base.clone(),
    };
    api.ok(
        "PUT",
        "/v1/workspaces/acme",
        None,
        Some(json!({"admin": "alice"})),
    );
    for (user, role) in [
        ("bob", "editor"),
        ("carol", "viewer"),
        ("dave", "viewer"),
        ("erin", "viewer"),
    ] {
        api.ok(
            "PUT",
            &format!("/v1/workspaces/acme/members/{user}"),
            Some("alice"),
            Some(json!({"role": role})),
        );
    }
    // The console's files: public, with the strict policy, and nothing from elsewhere.
    let (status, _) = api.send("GET", "/console/", None, None);
    assert_eq!(status, 200);
    let page = agent(Duration::from_secs(5))
        .get(&format!("{}/console/", server.base))
        .call()
        .unwrap();
    let csp = page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                format!("--user-data-dir={}", driver.profile.path().display())]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a chromium session through chromedriver");
        let b = Browser { client, shots: screenshot_dir() };
        let outcome = flows(&b, &api).await;
        let _ = b.client.close().await;
        outcome
    });
    drop(driver);
    server.kill();
}

async fn flows(b: &Browser, api: &Api) {
    let base = &api.base;
    b.client.goto(&format!("{base}/console/")).await.unwrap();
    b.find(&heading(1, "Sign in")).await;
    assert_eq!(
        b.find(&control("API key"))
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password")
    );
    b.screenshot("01-sign-in").await;
    b.sign_in("wrong-key", "acme", "alice").await;
    b.sees("invalid API key").await;
    b.sign_in(PROCESS_KEY, "acme", "zed").await;
    b.sees("zed is not a member of workspace acme").await;
    b.sign_in(PROCESS_KEY, "acme", "alice").await;
    b.find(&heading(1, "Groups")).await;
    // Credentials stay in sessionStorage: never in the URL or a cookie.
    let url = b.client.current_url().await.unwrap().to_string();
    assert!(!url.contains(PROCESS_KEY), "{url}");
    let cookies = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(cookies, json!(""));
    for name in [
        "Groups",
        "Members",
        "Connections",
        "Workbooks",
        "Schema",
        "Relationships",
        "Check",
    ] {
        b.find(&format!("//nav{}", link(name))).await;
    }

    // An admin creates a group with members. The dialog is keyboard reachable.
    b.dialog_keyboard("Create group", "Create group", "Group name")
        .await;
    b.click(&button("Create group")).await;
    let create = dialog("Create group");
    b.fill_in(&create, "Group name", "Engineering").await;
    b.fill_in(&create, "Description", "builders").await;
    b.pick(&create, "carol").await;
    b.pick(&create, "bob").await;
    b.screenshot("02-create-group-dialog").await;
    b.click(&format!("{create}{}", button("Create group")))
        .await;
    b.gone(&create).await;
    b.find(&link("Engineering")).await;
    // A taken name: the server's message beside the field, nothing created.
    b.click(&button("Create group")).await;
    b.fill_in(&create, "Group name", "engineering").await;
    b.click(&format!("{create}{}", button("Create group")))
        .await;
    let error = b
        .find(&format!(
            "{create}{}/following-sibling::p[@class='error']",
            control("Group name")
        ))
        .await;
    // The server's own words, naming the group as it is stored.
    assert_eq!(
        error.text().await.unwrap(),
        format!(
            "workspace `acme` already has a group named `Engineering` (`{}`): `engineering` is the same name after Unicode normalization and case folding",
            api.ok("GET", "/v1/workspaces/acme/groups?q=Engineering", Some("alice"), None)["groups"][0]["id"].as_str().unwrap()
        )
    );
    b.screenshot("03-create-group-taken-name").await;
    b.click(&format!("{create}{}", button("Cancel"))).await;
    b.gone(&create).await;
    // A name that looks like HTML is shown as text and runs nothing.
    b.click(&button("Create group")).await;
    b.fill_in(&create, "Group name", XSS).await;
    b.click(&format!("{create}{}", button("Create group")))
        .await;
    b.gone(&create).await;
    b.find(&link(XSS)).await;
    let images = b
        .client
        .execute("return document.querySelectorAll('img').length", vec![])
        .await
        .unwrap();
    assert_eq!(images, json!(0), "a name became markup");
    assert!(
        b.client.get_alert_text().await.is_err(),
        "a name ran a script"
    );
    b.screenshot("04-groups").await;

    // Search filters as you type.
    b.fill("Search groups", "engin").await;
    b.gone(&link(XSS)).await;
    b.find(&link("Engineering")).await;
    let row = b
        .find("//tr[td/a[normalize-space(.)='Engineering']]")
        .await
        .text()
        .await
        .unwrap();
    assert!(row.contains('2') && row.contains("builders"), "{row}");
    b.screenshot("05-groups-search").await;
    let groups = api.ok(
        "GET",
        "/v1/workspaces/acme/groups?q=Engineering",
        Some("alice"),
        None,
    );
    let group_id = groups["groups"][0]["id"].as_str().unwrap().to_string();
    let group_path = format!("/v1/workspaces/acme/groups/{group_id}");
    // A rename and a new description made elsewhere change only the group's record, no
    // relationship; they still appear on the Groups page without a reload.
    b.mark_page().await;
    api.ok(
        "PATCH",
        &group_path,
        Some("alice"),
        Some(json!({"name": "Engineering team", "description": "renamed elsewhere"})),
    );
    b.live("//tr[td/a[normalize-space(.)='Engineering team'] and td[normalize-space(.)='renamed elsewhere']]").await;
    api.ok(
        "PATCH",
        &group_path,
        Some("alice"),
        Some(json!({"name": "Engineering", "description": "builders"})),
    );
    b.live("//tr[td/a[normalize-space(.)='Engineering'] and td[normalize-space(.)='builders']]")
        .await;

    // The group page: add a member, remove one.
    b.click(&link("Engineering")).await;
    b.find(&heading(1, "Engineering")).await;
    b.dialog_keyboard("Add members", "Add members", "Add members")
        .await;
    b.click(&button("Add members")).await;
    let add = dialog("Add members");
    b.pick(&add, "dave").await;
    b.click(&format!("{add}{}", button("Add"))).await;
    b.find(&button("Remove dave")).await;
    b.click(&button("Remove dave")).await;
    b.gone(&button("Remove dave")).await;
    // Changes made elsewhere appear without a reload: a member added,
    b.mark_page().await;
    api.ok(
        "PUT",
        &format!("/v1/workspaces/acme/groups/{group_id}/members/erin"),
        Some("alice"),
        None,
    );
    b.live(&button("Remove erin")).await;
    // a new description and a rename (no relationship changes),
    api.ok(
        "PATCH",
        &group_path,
        Some("alice"),
        Some(json!({"description": "from elsewhere"})),
    );
    b.live("//main/p[normalize-space(.)='from elsewhere']")
        .await;
    api.ok(
        "PATCH",
        &group_path,
        Some("alice"),
        Some(json!({"name": "Engineers"})),
    );
    b.live(&heading(1, "Engineers")).await;
    api.ok(
        "PATCH",
        &group_path,
        Some("alice"),
        Some(json!({"name": "Engineering", "description": "builders"})),
    );
    b.live(&heading(1, "Engineering")).await;
    b.live("//main/p[normalize-space(.)='builders']").await;
    b.screenshot("06-group-page").await;
    // Edit and Save the description.
    b.click(&button("Edit")).await;
    b.fill("Description", "builders of things").await;
    b.click(&button("Save")).await;
    b.sees("builders of things").await;
    b.find(&button("Edit")).await;

    // Share a connection with the group, picking it by its member count.
    b.click(&format!("//nav{}", link("Connections"))).await;
    b.click(&button("New connection")).await;
    let new = dialog("New connection");
    b.fill_in(&new, "Connection id", "warehouse").await;
    b.click(&format!("{new}{}", button("Create connection")))
        .await;
    b.find(&heading(2, "Sharing")).await;
    b.find("//legend[normalize-space(.)='Specific users and groups']")
        .await;
    b.select_by_label(&control("Group"), "Engineering (3 members)")
        .await;
    b.click(&button("Share with group")).await;
    b.find("//tr[td[normalize-space(.)='Engineering (3 members)']]//button[normalize-space(.)='Remove']").await;
    b.screenshot("07-connection-sharing").await;
    b.click(&link("← Connections")).await;
    b.find(&link("warehouse")).await;
    b.screenshot("07a-connections").await;
    // A workbook is shared with a role.
    b.click(&format!("//nav{}", link("Workbooks"))).await;
    b.click(&button("New workbook")).await;
    let new = dialog("New workbook");
    b.fill_in(&new, "Workbook id", "q3").await;
    b.click(&format!("{new}{}", button("Create workbook")))
        .await;
    b.find(&heading(2, "Sharing")).await;
    b.select_by_label(&control("Group"), "Engineering (3 members)")
        .await;
    b.select_by_value(&control("Group role"), "editor").await;
    b.click(&button("Share with group")).await;
    b.find("//tr[td[normalize-space(.)='Engineering (3 members)'] and td[normalize-space(.)='editor']]//button[normalize-space(.)='Remove']").await;
    b.screenshot("07b-workbook-sharing").await;
    // The engine's object for that connection, whatever form its id takes.
    let grants = api.ok(
        "POST",
        "/v1/relationships/read",
        None,
        Some(json!({"relationshipFilter": {"resourceType": "connection", "optionalRelation": "grantee",
            "optionalSubjectFilter": {"subjectType": "group", "optionalSubjectId": group_id}}})),
    );
    let connection = grants["result"]["relationship"]["resource"].clone();
    let connection_text = format!("connection:{}", connection["objectId"].as_str().unwrap());
    assert!(api.may_use(&connection, "carol"));

    // The admin sees the group's resources.
    b.click(&format!("//nav{}", link("Groups"))).await;
    b.click(&link("Engineering")).await;
    b.find(&heading(2, "Resources")).await;
    b.find("//section[h2='Resources']//a[normalize-space(.)='warehouse']")
        .await;

    // Check explains why carol may use it.
    b.click(&format!("//nav{}", link("Check"))).await;
    b.fill("Resource", &connection_text).await;
    b.fill("Permission", "use").await;
    b.fill("Subject", "user:carol").await;
    b.click(&button("Check")).await;
    b.sees("Allowed").await;
    b.sees(&format!(
        "via group:{group_id}#member → {connection_text}#grantee"
    ))
    .await;
    b.screenshot("08-check-allowed").await;

    // Removing carol from the workspace revokes her access.
    b.click(&format!("//nav{}", link("Members"))).await;
    b.find("//tr[td[normalize-space(.)='carol']]//a[normalize-space(.)='Engineering']")
        .await;
    b.screenshot("09-members").await;
    // An admin changes a role.
    b.select_by_value(&control("Role of dave"), "editor").await;
    let deadline = Instant::now() + WAIT;
    while api.ok("GET", "/v1/workspaces/acme/members", Some("alice"), None)["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["id"] != "dave" || m["role"] != "editor")
    {
        assert!(Instant::now() < deadline, "dave's role never changed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.select_by_value(&control("Role of dave"), "viewer").await;
    b.sees("dave is now viewer").await;
    b.dialog_keyboard("Remove carol", "Remove from workspace", "Cancel")
        .await;
    b.click(&button("Remove carol")).await;
    let remove = dialog("Remove from workspace");
    b.click(&format!("{remove}{}", button("Remove from workspace")))
        .await;
    b.gone(&remove).await;
    b.gone(&button("Remove carol")).await;
    assert!(!api.may_use(&connection, "carol"), "carol kept access");
    b.click(&format!("//nav{}", link("Check"))).await;
    b.fill("Resource", &connection_text).await;
    b.fill("Permission", "use").await;
    b.fill("Subject", "user:carol").await;
    b.click(&button("Check")).await;
    b.sees("Not allowed").await;
    b.sees("does not contain user:carol").await;
    b.screenshot("10-check-denied").await;
    // Lookup mode.
    b.select_by_label(&control("Mode"), "Lookup subjects").await;
    b.fill("Resource", &connection_text).await;
    b.fill("Permission", "use").await;
    b.fill("Subject type", "user").await;
    b.click(&button("Look up")).await;
    b.sees("user:bob").await;

    // Deleting the group through its dialog removes it from the connection.
    b.click(&format!("//nav{}", link("Groups"))).await;
    b.click(&link("Engineering")).await;
    b.dialog_keyboard("Delete group", "Delete group", "Cancel")
        .await;
    b.click(&button("Delete group")).await;
    let delete = dialog("Delete group");
    let said = b.find(&delete).await.text().await.unwrap();
    assert!(
        said.contains(
            "will be permanently removed from all resources, revoking access for all its members"
        ) && said.contains("This cannot be undone"),
        "{said}"
    );
    b.screenshot("11-delete-group-dialog").await;
    b.click(&format!("{delete}{}", button("Delete group")))
        .await;
    b.find(&heading(1, "Groups")).await;
    b.gone(&link("Engineering")).await;
    let access = api.ok(
        "GET",
        "/v1/workspaces/acme/connections/warehouse/access",
        Some("alice"),
        None,
    );
    assert_eq!(access["groups"], json!([]), "{access}");
    assert!(!api.may_use(&connection, "erin"));

    // Developer screens.
    b.click(&format!("//nav{}", link("Schema"))).await;
    b.find("//pre[contains(., 'definition workspace')]").await;
    let edges = b
        .client
        .execute(
            "return document.querySelectorAll('.diagram svg path.edge').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(edges.as_u64().unwrap() >= 5, "{edges}");
    let arrows = b
        .client
        .execute(
            "return document.querySelectorAll('.diagram svg path.edge.arrow').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(arrows.as_u64().unwrap() >= 1, "{arrows}");
    b.screenshot("12-schema").await;
    b.click(&format!("//nav{}", link("Relationships"))).await;
    b.fill("Resource type", "workspace").await;
    b.click(&button("Show relationships")).await;
    b.sees("Page 1:").await;
    b.find("//td[normalize-space(.)='user:alice']").await;
    b.screenshot("13-relationships").await;

    // A viewer sees the directory and members, and no edit controls or Resources.
    b.sign_out().await;
    b.sign_in(PROCESS_KEY, "acme", "dave").await;
    b.find(&heading(1, "Groups")).await;
    b.find(&link(XSS)).await;
    assert!(!b.shows(&button("Create group")).await);
    b.click(&link(XSS)).await;
    b.find(&heading(1, XSS)).await;
    b.find(&heading(2, "Members (0)")).await;
    for control in ["Add members", "Edit", "Delete group"] {
        assert!(
            !b.shows(&button(control)).await,
            "a viewer sees `{control}`"
        );
    }
    assert!(
        !b.shows(&heading(2, "Resources")).await,
        "a viewer sees Resources"
    );
    b.screenshot("14-viewer-group").await;
    let (status, _) = api.send(
        "GET",
        &format!("/v1/workspaces/acme/groups/{group_id}/resources"),
        Some("dave"),
        None,
    );
    assert!(status == 403 || status == 404, "{status}");
    b.click(&format!("//nav{}", link("Members"))).await;
    b.find("//td[normalize-space(.)='bob']").await;
    assert!(
        !b.shows("//button[starts-with(normalize-space(.), 'Remove')]")
            .await
    );
    assert!(!b.shows("//select").await, "a viewer can change roles");
    b.screenshot("15-viewer-members").await;

    // Usable at 360 px: nothing wider than the window.
    b.client.set_window_size(360, 800).await.unwrap();
    b.click(&format!("//nav{}", link("Groups"))).await;
    b.find(&link(XSS)).await;
    b.narrow("16-groups-360px").await;
    // Every screen, as an admin sees it, at 360 px.
    b.sign_out().await;
    b.narrow("17-sign-in-360px").await;
    b.sign_in(PROCESS_KEY, "acme", "alice").await;
    b.find(&link(XSS)).await;
    b.click(&button("Create group")).await;
    b.find(&dialog("Create group")).await;
    b.narrow("18-create-group-dialog-360px").await;
    b.escape().await;
    b.gone(&dialog("Create group")).await;
    b.click(&link(XSS)).await;
    b.find(&heading(1, XSS)).await;
    b.narrow("19-group-page-360px").await;
    b.click(&format!("//nav{}", link("Members"))).await;
    b.find("//td[normalize-space(.)='bob']").await;
    b.narrow("20-members-360px").await;
    b.click(&format!("//nav{}", link("Connections"))).await;
    b.click(&link("warehouse")).await;
    b.find(&heading(2, "Sharing")).await;
    b.narrow("21-connection-sharing-360px").await;
    b.click(&format!("//nav{}", link("Workbooks"))).await;
    b.click(&link("q3")).await;
    b.find(&heading(2, "Sharing")).await;
    b.narrow("22-workbook-sharing-360px").await;
    b.click(&format!("//nav{}", link("Schema"))).await;
    b.find("//pre[contains(., 'definition workspace')]").await;
    b.narrow("23-schema-360px").await;
    b.click(&format!("//nav{}", link("Relationships"))).await;
    b.sees("Page 1:").await;
    b.narrow("24-relationships-360px").await;
    b.click(&format!("//nav{}", link("Check"))).await;
    b.fill("Resource", &connection_text).await;
    b.fill("Permission", "use").await;
    b.fill("Subject", "user:alice").await;
    b.click(&button("Check")).await;
    b.sees("Allowed").await;
    b.narrow("25-check-360px").await;
    // Everything the page loaded came from this server.
    let origins = b
        .client
        .execute(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)",
            vec![],
        )
        .await
        .unwrap();
    for origin in origins.as_array().unwrap() {
        assert_eq!(origin.as_str(), Some(base.as_str()), "{origins}");
    }
}
