//! A Rust function as fastfn runs it: a program that listens on PORT (format server), built by the
//! gateway with `cargo build --release --offline` and restarted when its sources change. The
//! standard library alone, so that it builds offline; an axum or hyper app works the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

// Answers each request of one connection, kept alive until the client closes it or asks to.
fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let mut words = request_line.split_whitespace();
        let (method, target) = (words.next().unwrap_or("GET"), words.next().unwrap_or("/"));
        // A POST is echoed; anything else is greeted by the query's name.
        let answer = if method == "POST" {
            body
        } else {
            let name = target
                .split_once("name=")
                .map(|(_, rest)| rest.split('&').next().unwrap_or(""))
                .filter(|name| !name.is_empty())
                .unwrap_or("world");
            format!("hello {} from pid {}\n", name, std::process::id()).into_bytes()
        };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )?;
        if method != "HEAD" {
            writer.write_all(&answer)?;
        }
        if close {
            return Ok(());
        }
    }
}

fn main() {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    let listener = TcpListener::bind(format!("{}:{}", host, port)).expect("cannot listen");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || serve(stream));
    }
}
