//! An application stand-in: inserts rows as the app roles at a steady rate and records every id
//! whose INSERT was acknowledged. Like an app after an endpoint switch, it writes to whichever
//! side accepts its login (BLUE is tried first).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Writer {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

pub const TABLE: &str = r#""Ünïcode"."Order Items""#;

impl Writer {
    /// `ports` in preference order; `roles` each get one connection; `tps` in total.
    pub fn start(ports: Arc<Mutex<Vec<u16>>>, roles: &[&str], tps: u32) -> Writer {
        Writer::start_in(ports, roles, tps, super::DB)
    }

    /// The same in database `db` (which holds the same table).
    pub fn start_in(ports: Arc<Mutex<Vec<u16>>>, roles: &[&str], tps: u32, db: &str) -> Writer {
        let db = db.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let pause = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let (s, a, p, id) = (stop.clone(), acked.clone(), pause.clone(), idle.clone());
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conns: Vec<Option<tokio_postgres::Client>> = roles.iter().map(|_| None).collect();
                let period = Duration::from_secs_f64(1.0 / f64::from(tps.max(1)));
                let mut next = Instant::now();
                let mut i = 0usize;
                while !s.load(Ordering::Relaxed) {
                    if p.load(Ordering::SeqCst) {
                        id.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        next = Instant::now();
                        continue;
                    }
                    id.store(false, Ordering::SeqCst);
                    let k = i % roles.len();
                    i += 1;
                    if conns[k].as_ref().is_none_or(|c| c.is_closed()) {
                        conns[k] = None;
                        let candidates = ports.lock().unwrap().clone();
                        for port in candidates {
                            let mut cfg = tokio_postgres::Config::new();
                            cfg.host("127.0.0.1").port(port).user(&roles[k]).dbname(&db).connect_timeout(Duration::from_secs(2));
                            if let Ok((c, conn)) = cfg.connect(tokio_postgres::NoTls).await {
                                tokio::spawn(conn);
                                conns[k] = Some(c);
                                break;
                            }
                        }
                    }
                    let mut failed = false;
                    if let Some(c) = &conns[k] {
                        let sql = format!("INSERT INTO {TABLE} (note, by_role) VALUES ($1, current_user) RETURNING id");
                        match c.query_one(&sql, &[&format!("row {i}")]).await {
                            Ok(row) => a.lock().unwrap().push(row.get(0)),
                            Err(_) => failed = true,
                        }
                        if !failed && i.is_multiple_of(10) {
                            let _ = c.execute("INSERT INTO items (note) VALUES ('tick')", &[]).await;
                        }
                    }
                    if failed {
                        conns[k] = None;
                    }
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    } else {
                        next = now;
                    }
                }
            });
        });
        Writer {
            stop,
            pause,
            idle,
            acked,
            handle: Some(handle),
        }
    }

    /// Stop writing until `resume`; returns once no insert is in flight.
    pub fn pause(&self) {
        self.idle.store(false, Ordering::SeqCst);
        self.pause.store(true, Ordering::SeqCst);
        while !self.idle.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn resume(&self) {
        self.pause.store(false, Ordering::SeqCst);
    }

    pub fn acked(&self) -> Vec<i64> {
        self.acked.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    pub fn stop(mut self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.acked()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
