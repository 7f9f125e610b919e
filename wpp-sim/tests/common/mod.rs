#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use serde_json::{json, Value};
use wpp_sim::{SimConfig, SimServer};

pub const SECRET: &str = "THISISMYSECURETOKEN";

pub struct Sim {
    pub server: SimServer,
    pub base: String,
    pub http: Client,
}

pub async fn sim() -> Sim {
    sim_with(SimConfig::fast()).await
}

pub async fn sim_with(config: SimConfig) -> Sim {
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start sim");
    let base = server.base_url();
    Sim {
        server,
        base,
        http: Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn token(&self, session: &str) -> String {
        let r = self
            .http
            .post(self.url(&format!("/api/{session}/{SECRET}/generate-token")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, session: &str, token: &str, route: &str) -> Response {
        self.http
            .get(self.url(&format!("/api/{session}/{route}")))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(
        &self,
        session: &str,
        token: &str,
        route: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .http
            .post(self.url(&format!("/api/{session}/{route}")))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            // reqwest's .json() would send exactly "application/json" and trigger the
            // res.send wrapper quirk; tests of that quirk set the header themselves.
            req = req
                .header("Content-Type", "application/json; charset=utf-8")
                .body(b.to_string());
        }
        req.send().await.unwrap()
    }

    pub async fn get_json(&self, session: &str, token: &str, route: &str) -> (u16, Value) {
        let r = self.get(session, token, route).await;
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    pub async fn post_json(
        &self,
        session: &str,
        token: &str,
        route: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self.post(session, token, route, body).await;
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    pub async fn status(&self, session: &str, token: &str) -> Value {
        let (code, v) = self.get_json(session, token, "status-session").await;
        assert_eq!(code, 200);
        v
    }

    /// Polls status-session until `status` is `want`.
    pub async fn wait_status(
        &self,
        session: &str,
        token: &str,
        want: &str,
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.status(session, token).await;
            if v["status"] == want {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{session} never reached {want}; last {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    pub async fn fault(&self, body: Value) {
        let (s, v) = self.sim_post("/__sim/faults", body).await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn scan(&self, session: &str) -> (u16, Value) {
        self.sim_post(&format!("/__sim/sessions/{session}/scan"), json!({}))
            .await
    }
}

/// Decodes a PNG and reads the QR code in it.
pub fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

pub fn png_size(png_bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(png_bytes).read_info().unwrap();
    (reader.info().width, reader.info().height)
}
