//! The console at `/` of the real `orders serve`, in headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`): what a user sees after orders are created and
//! confirmed through the API. Needs /usr/bin/chromium and /usr/bin/chromedriver (or
//! `CHROMIUM` and `CHROMEDRIVER`); fails when they are missing. Leaves a screenshot at
//! `ORDERS_CONSOLE_SCREENSHOT` (default target/console.png; the README's is docs/console.png).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use orders_tests::{Server, client, eventually, get_json, new_order};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STATUSES: [&str; 4] = ["CANCELLED", "SHIPPED", "CONFIRMED", "PENDING"];
const WAIT: Duration = Duration::from_secs(15);

/// A customer id a careless page would turn into markup (and run).
const HOSTILE_CUSTOMER: &str = "<img src=x onerror=\"document.title='owned'\">&amp;";

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found (set {env} to override): install Debian's chromium and chromium-driver, \
         e.g. `apt-get install chromium chromium-driver` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// chromedriver on a free local port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> Driver {
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1360,1160", "--hide-scrollbars", "--lang=en-US"],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver")
}

/// The visible text of the elements `css` selects, in document order; `None` when the page
/// replaced one of them while it was being read (the list re-renders as the bus speaks).
async fn texts(browser: &Client, css: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for element in browser.find_all(Locator::Css(css)).await.ok()? {
        out.push(element.text().await.ok()?);
    }
    Some(out)
}

/// Waits until the visible text of `css` (all matches, joined by newlines) satisfies `ok`.
async fn screen_shows(
    browser: &Client,
    what: &str,
    css: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(shown) = texts(browser, css).await.map(|t| t.join("\n")) {
            if ok(&shown) {
                return shown;
            }
            last = shown;
        }
        assert!(
            Instant::now() < deadline,
            "the console does not show {what} ({css}); it shows:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn one(browser: &Client, css: &str) -> Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

async fn post(c: &reqwest::Client, url: String, body: Option<Value>) -> Value {
    let request = c.post(url);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("an order")
}

async fn create(c: &reqwest::Client, server: &Server, customer: &str) -> String {
    let order = post(c, server.url("/orders"), Some(new_order(customer))).await;
    order["orderId"].as_str().expect("orderId").to_owned()
}

async fn command(c: &reqwest::Client, server: &Server, id: &str, what: &str) {
    post(c, server.url(&format!("/orders/{id}/{what}")), None).await;
}

/// The lag gauge's value on GET /metrics, once the metrics exist.
async fn gauge(c: &reqwest::Client, server: &Server, name: &str) -> Option<f64> {
    let text = c
        .get(server.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn the_console_shows_orders_their_timeline_at_each_version_the_bus_and_the_lag() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let driver = Driver::start(&dir.path().join("chromedriver.log"));
    let browser = browser(&driver).await;
    let c = client();

    // The page and its policy, as the browser gets them.
    let page = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    browser.goto(&server.url("/")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Orders · local console");
    // An empty store says so, and the bus feed connects before anything is published.
    screen_shows(&browser, "the empty-store hint", "#orders-empty", |t| {
        t.contains("No orders yet")
    })
    .await;
    screen_shows(&browser, "a live bus feed", "#bus-state", |t| t == "live").await;

    // Through the API: one order confirmed, others around it.
    let other = create(&c, &server, "cust-other").await;
    let id = create(&c, &server, HOSTILE_CUSTOMER).await;
    command(&c, &server, &id, "confirm").await;
    let shipped = create(&c, &server, "cust-books").await;
    command(&c, &server, &shipped, "confirm").await;
    command(&c, &server, &shipped, "ship").await;
    let cancelled = create(&c, &server, "cust-books").await;
    command(&c, &server, &cancelled, "cancel").await;

    // The list follows the bus: the order is there, CONFIRMED, its customer shown as text.
    let row = format!("#orders tbody tr[data-order-id='{id}']");
    screen_shows(&browser, "the order, confirmed", &row, |t| {
        t.contains("CONFIRMED") && t.contains(HOSTILE_CUSTOMER) && t.contains("34.99")
    })
    .await;
    // Every order, the newest change first.
    let rows = screen_shows(&browser, "every order", "#orders tbody tr", |t| {
        t.lines().count() == 4 && t.contains("CANCELLED") && t.contains("SHIPPED")
    })
    .await;
    let statuses: Vec<&str> = rows
        .lines()
        .map(|l| STATUSES.into_iter().find(|s| l.contains(s)).unwrap_or("?"))
        .collect();
    assert_eq!(
        statuses,
        ["CANCELLED", "SHIPPED", "CONFIRMED", "PENDING"],
        "{rows}"
    );
    assert!(
        browser
            .find_all(Locator::Css("#orders img"))
            .await
            .unwrap()
            .is_empty(),
        "a customer id became markup"
    );

    // The live feed shows the order's two events.
    let feed = format!("#bus li[data-order-id='{id}']");
    let bus = screen_shows(&browser, "the order's events on the bus", &feed, |t| {
        t.contains("OrderCreated") && t.contains("OrderConfirmed")
    })
    .await;
    assert_eq!(bus.lines().filter(|l| l.contains(&id)).count(), 2, "{bus}");

    // Filters: by customer, then by status.
    let customer = one(&browser, "#filter-customer").await;
    customer.send_keys("cust-books").await.unwrap();
    one(&browser, "#filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let listed = screen_shows(
        &browser,
        "cust-books' two orders",
        "#orders tbody tr",
        |t| t.lines().count() == 2,
    )
    .await;
    assert!(
        listed.contains("SHIPPED")
            && listed.contains("CANCELLED")
            && !listed.contains("cust-other"),
        "{listed}"
    );
    customer.clear().await.unwrap();
    one(&browser, "#filter-status")
        .await
        .select_by_value("PENDING")
        .await
        .unwrap();
    let pending = screen_shows(&browser, "the one PENDING order", "#orders tbody tr", |t| {
        t.lines().count() == 1
    })
    .await;
    assert!(pending.contains("cust-other"), "{pending}");
    let pending_row = format!("#orders tbody tr[data-order-id='{other}']");
    assert_eq!(texts(&browser, &pending_row).await, Some(vec![pending]));
    one(&browser, "#filter-status")
        .await
        .select_by_value("")
        .await
        .unwrap();
    screen_shows(&browser, "every order again", "#orders tbody tr", |t| {
        t.lines().count() == 4
    })
    .await;

    // The order's timeline, at its newest version.
    one(&browser, &row).await.click().await.unwrap();
    let timeline = screen_shows(&browser, "both events", "#timeline li", |t| {
        t.contains("OrderConfirmed")
    })
    .await;
    let events: Vec<&str> = timeline.lines().filter(|l| l.starts_with('v')).collect();
    assert_eq!(
        events,
        ["v1 OrderCreated", "v2 OrderConfirmed"],
        "{timeline}"
    );
    screen_shows(&browser, "version 2: CONFIRMED", "#state-status", |t| {
        t == "CONFIRMED"
    })
    .await;
    screen_shows(&browser, "the customer as text", "#state-customer", |t| {
        t == HOSTILE_CUSTOMER
    })
    .await;

    // Time travel with the keyboard, as a user would: back to version 1, then forward.
    let slider = one(&browser, "#slider").await;
    slider
        .send_keys(&char::from(Key::Left).to_string())
        .await
        .unwrap();
    screen_shows(&browser, "version 1", "#slider-version", |t| t == "1").await;
    screen_shows(&browser, "version 1: PENDING", "#state-status", |t| {
        t == "PENDING"
    })
    .await;
    slider
        .send_keys(&char::from(Key::Right).to_string())
        .await
        .unwrap();
    screen_shows(&browser, "version 2 again", "#state-status", |t| {
        t == "CONFIRMED"
    })
    .await;

    // The lag tiles read GET /metrics: each shows its gauge, as a duration.
    for (tile, name) in [
        ("#lag-projection", "orders_projection_lag_last_seconds"),
        ("#lag-publish", "orders_publish_lag_last_seconds"),
    ] {
        let value = eventually(&format!("{name} on /metrics"), WAIT, || async {
            gauge(&c, &server, name).await
        })
        .await;
        screen_shows(&browser, &format!("{name} = {value} s"), tile, |t| {
            // Shown to 0.1 ms below a second, to 10 ms above.
            let (number, unit, within) = match t.strip_suffix(" ms") {
                Some(n) => (n, 1e-3, 1e-4),
                None => (t.strip_suffix(" s").unwrap_or(t), 1.0, 6e-3),
            };
            number
                .parse::<f64>()
                .is_ok_and(|n| (n * unit - value).abs() <= within)
        })
        .await;
    }

    // Nothing a user string carried ran.
    assert_eq!(browser.title().await.unwrap(), "Orders · local console");
    let (status, view) = get_json(&c, server.url(&format!("/orders/{id}"))).await;
    assert_eq!(
        (status, view["status"].as_str()),
        (StatusCode::OK, Some("CONFIRMED"))
    );

    // The screenshot for the README: the order at its newest version, the slider unfocused.
    one(&browser, "#orders-title").await.click().await.unwrap();
    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = std::env::var_os("ORDERS_CONSOLE_SCREENSHOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console.png"),
        PathBuf::from,
    );
    std::fs::write(&path, png).expect("write the screenshot");
    browser.close().await.unwrap();
}
