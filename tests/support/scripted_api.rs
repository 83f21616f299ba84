//! A scripted stand-in for the Wolkvox API on loopback, for what the simulator cannot
//! produce: every request is answered by a test-supplied function of the request
//! (hostile record bodies, error texts, echoed secrets). One connection per request.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use chrono::NaiveDateTime;

/// The report path the exporter appends to an operation's base URL.
pub const REPORT_PATH: &str = "/api/v2/reports_manager.php";
/// The API's cap on records per answer.
pub const RECORD_CAP: usize = 60_000;

/// One request as the scripted API saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0 for the first request.
    pub number: u64,
    pub path: String,
    pub query: String,
    /// `date_ini` / `date_end`, when they parse.
    pub ini: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/html",
            body: body.as_bytes().to_vec(),
        }
    }

    /// The vendor's error shape: `{"code":S,"error":T,"msg":T,"data":[]}`.
    pub fn error(status: u16, text: &str) -> Reply {
        let text = serde_json::to_string(text).expect("a string serializes");
        Reply::json(
            status,
            format!(r#"{{"code":{status},"error":{text},"msg":{text},"data":[]}}"#),
        )
    }

    /// 200 with these record objects (already JSON), or the 404 "no records" answer.
    pub fn records<'a>(records: impl IntoIterator<Item = &'a str>) -> Reply {
        let mut body = String::from(r#"{"code":200,"error":null,"msg":"records","data":["#);
        let mut n = 0;
        for (i, r) in records.into_iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r);
            n += 1;
        }
        if n == 0 {
            return Reply::error(404, "Validate dates entered");
        }
        body.push_str("]}");
        Reply::json(200, body)
    }
}

/// Records to serve by window: each is served to every request whose local
/// `[date_ini, date_end]` contains its `serve_at`, whatever its own `date` field says.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Sorted by `serve_at`.
    entries: Vec<(NaiveDateTime, String)>,
}

impl Schedule {
    pub fn new(mut entries: Vec<(NaiveDateTime, String)>) -> Schedule {
        entries.sort_by_key(|e| e.0);
        Schedule { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The answer to a request: its records in `serve_at` order, cut at the API's cap.
    pub fn reply(&self, req: &Request) -> Reply {
        let (Some(ini), Some(end)) = (req.ini, req.end) else {
            return Reply::error(400, "The API does not exist or parameters are missing");
        };
        let from = self.entries.partition_point(|e| e.0 < ini);
        let to = self.entries.partition_point(|e| e.0 <= end);
        let slice = &self.entries[from..to.max(from)];
        Reply::records(slice.iter().take(RECORD_CAP).map(|e| e.1.as_str()))
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running scripted API; stops when dropped.
pub struct ScriptedApi {
    base_url: String,
    requests: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<(Request, u16)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ScriptedApi {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> ScriptedApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, log, stop) = (requests.clone(), log.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (handler, requests, log) =
                                (handler.clone(), requests.clone(), log.clone());
                            thread::spawn(move || serve(stream, &*handler, &requests, &log));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        ScriptedApi {
            base_url,
            requests,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without the report path.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Every request answered, with the status sent.
    pub fn log(&self) -> Vec<(Request, u16)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ScriptedApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    requests: &AtomicU64,
    log: &Mutex<Vec<(Request, u16)>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let token = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("wolkvox-token")
            .then(|| value.trim().to_owned())
    });
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |key: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y%m%d%H%M%S").ok())
    };
    let req = Request {
        number: requests.fetch_add(1, Ordering::SeqCst),
        path: path.to_owned(),
        query: query.to_owned(),
        ini: param("date_ini"),
        end: param("date_end"),
        token,
    };
    let reply = if req.path == REPORT_PATH {
        handler(&req)
    } else {
        Reply::html(404, "not found")
    };
    log.lock().unwrap().push((req, reply.status));
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // Let the client read everything before the socket closes.
    let _ = stream.read(&mut chunk);
}
