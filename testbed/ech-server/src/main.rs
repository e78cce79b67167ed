//! `netsensor-ech-server --cert CHAIN.pem --key KEY.pem --public-name NAME --config-id N`
//!
//! A TLS 1.3 server on 127.0.0.1 (a free port) holding a freshly generated
//! ECH key (X25519, HKDF-SHA256, AES-128-GCM / AES-256-GCM / ChaCha20-Poly1305
//! as BoringSSL marshals it) for `NAME`. It prints two lines, `LISTEN addr`
//! and `ECHCONFIGLIST hex`, then answers every connection with one HTTP
//! response until it is killed. A client offering ECH under another config
//! gets the outer handshake and BoringSSL's retry_configs: the list printed.
//! Loopback only. Test helper: errors end the process with a message.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use boring::hpke::HpkeKey;
use boring::ssl::{SslAcceptor, SslEchKeys, SslFiletype, SslMethod, SslVersion};
use foreign_types::ForeignType;

fn arg(args: &[String], name: &str) -> String {
    match args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)) {
        Some(v) => v.clone(),
        None => fail(&format!("missing {name} VALUE")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("netsensor-ech-server: {msg}");
    std::process::exit(2)
}

/// One ECHConfig (RFC 9849 §4) for a new X25519 key, and the key.
fn ech_config(public_name: &str, config_id: u8) -> (Vec<u8>, HpkeKey) {
    let mut private = [0u8; 32];
    boring::rand::rand_bytes(&mut private).unwrap_or_else(|e| fail(&format!("random: {e}")));
    let key = HpkeKey::dhkem_p256_sha256(&private).unwrap_or_else(|e| fail(&format!("HPKE key: {e}")));
    let name = CString::new(public_name).unwrap_or_else(|_| fail("public name has a NUL"));
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len: usize = 0;
    // SAFETY: `key` is a live EVP_HPKE_KEY, `name` a NUL-terminated string;
    // on success BoringSSL hands us `len` bytes at `out`, copied then freed.
    let config = unsafe {
        if boring_sys::SSL_marshal_ech_config(&mut out, &mut len, config_id, key.as_ptr(), name.as_ptr(), 0) != 1 {
            fail("SSL_marshal_ech_config failed");
        }
        let v = std::slice::from_raw_parts(out, len).to_vec();
        boring_sys::OPENSSL_free(out.cast());
        v
    };
    (config, key)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (cert, key) = (arg(&args, "--cert"), arg(&args, "--key"));
    let public_name = arg(&args, "--public-name");
    let config_id: u8 = arg(&args, "--config-id")
        .parse()
        .unwrap_or_else(|_| fail("--config-id: a number 0-255"));

    let (config, hpke) = ech_config(&public_name, config_id);
    let mut keys = SslEchKeys::builder().unwrap_or_else(|e| fail(&format!("ECH keys: {e}")));
    keys.add_key(true, &config, hpke)
        .unwrap_or_else(|e| fail(&format!("ECH key: {e}")));
    let keys = keys.build();

    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap_or_else(|e| fail(&format!("{e}")));
    b.set_min_proto_version(Some(SslVersion::TLS1_3))
        .unwrap_or_else(|e| fail(&format!("{e}")));
    b.set_certificate_chain_file(&cert)
        .unwrap_or_else(|e| fail(&format!("--cert {cert}: {e}")));
    b.set_private_key_file(&key, SslFiletype::PEM)
        .unwrap_or_else(|e| fail(&format!("--key {key}: {e}")));
    b.set_ech_keys(&keys)
        .unwrap_or_else(|e| fail(&format!("ECH keys: {e}")));
    let acceptor = b.build();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&format!("{e}")));
    let mut list = Vec::with_capacity(config.len() + 2);
    list.extend_from_slice(&(config.len() as u16).to_be_bytes());
    list.extend_from_slice(&config);
    let hex: String = list.iter().map(|b| format!("{b:02x}")).collect();
    println!("LISTEN {addr}\nECHCONFIGLIST {hex}");
    let _ = std::io::stdout().flush();

    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let acceptor = acceptor.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
            if let Ok(mut tls) = acceptor.accept(stream) {
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf);
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = tls.shutdown();
            }
        });
    }
}
