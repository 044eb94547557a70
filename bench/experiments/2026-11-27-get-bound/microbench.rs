use rusqlite::{Connection, OpenFlags};
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mode = std::env::args().nth(2).unwrap();
    let setup = Connection::open(&path).unwrap();
    let hash: String = setup.query_row("select token_hash from api_tokens where revoked_at is null limit 1", [], |r| r.get(0)).unwrap();
    let (org, proj): (String, String) = setup.query_row("select organization_id, project_id from models group by 1,2 order by count(*) desc limit 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let mut st = setup.prepare("select resource_uri from models where organization_id=? and project_id=?").unwrap();
    let uris: Vec<String> = st.query_map([&org, &proj], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    drop(st);
    let threads: usize = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let uris = std::sync::Arc::new(uris);
    let t0 = Instant::now();
    let hs: Vec<_> = (0..threads).map(|ti| { let (path, mode, hash, org, proj, uris) = (path.clone(), mode.clone(), hash.clone(), org.clone(), proj.clone(), uris.clone()); std::thread::spawn(move || {
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).unwrap();
    let cache: i64 = std::env::var("CACHE").ok().and_then(|v| v.parse().ok()).unwrap_or(-512);
    conn.pragma_update(None, "cache_size", cache).unwrap();
    if let Ok(m) = std::env::var("MMAP") { conn.pragma_update(None, "mmap_size", m.parse::<i64>().unwrap()).unwrap(); }
    let tok_sql = "SELECT t.*, (SELECT c.generation FROM model_counts c WHERE c.organization_id = t.organization_id AND c.project_id = t.project_id) AS project_generation FROM api_tokens t WHERE t.token_hash = ? AND t.revoked_at IS NULL";
    let model_sql = "SELECT * FROM models WHERE organization_id = ? AND project_id = ? AND resource_uri = ?";
    let n = 200_000usize;
    let mut x: u64 = 88172645463325252 + ti as u64;
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..n {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        let uri = &uris[(x as usize) % uris.len()];
        let one = mode.contains("txn");
        if one { conn.execute_batch("BEGIN").unwrap(); }
        if !mode.contains("notoken") {
            let mut s = conn.prepare_cached(tok_sql).unwrap();
            let mut rows = s.query([&hash]).unwrap();
            let r = rows.next().unwrap().unwrap();
            let v: String = r.get(0).unwrap();
            total += v.len();
        }
        {
            let mut s = conn.prepare_cached(model_sql).unwrap();
            let mut rows = s.query([&org, &proj, uri]).unwrap();
            let r = rows.next().unwrap().unwrap();
            for i in 0..r.as_ref().column_count() { let v = r.get_ref(i).unwrap(); if let Ok(s) = v.as_bytes() { total += s.len(); } }
        }
        if one { conn.execute_batch("COMMIT").unwrap(); }
    }
    let e = t.elapsed();
    println!("{mode} cache={cache} mmap={:?}: {:.2} us/iter ({total})", std::env::var("MMAP").ok(), e.as_secs_f64() * 1e6 / n as f64);
    })}).collect();
    for h in hs { h.join().unwrap(); }
    println!("threads {threads}: {:.2} us/iter overall", t0.elapsed().as_secs_f64() * 1e6 / (200_000 * threads) as f64);
}
