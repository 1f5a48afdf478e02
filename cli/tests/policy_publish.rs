//! `tousu policy publish FILE`: a valid policy lands in the KV bucket the
//! services watch; an invalid one is refused with its problems and never
//! published.

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_policies_are_published() {
    let nats = tousu_tests::NatsServer::start().await.unwrap();
    let run = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tousu"))
            .args(["policy", "publish"])
            .arg(file)
            .args(["--nats", &nats.url])
            .output()
            .expect("running tousu")
    };
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "name = \"broken\"\nnot_a_key = 1\n").unwrap();
    let out = run(&broken);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml:"), "{err}");
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    assert!(
        js.get_key_value("tousu_policy").await.is_err(),
        "nothing was published"
    );

    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/property.toml");
    let out = run(&policy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("published policy property version sha256:"),
        "{printed}"
    );
    let store = js.get_key_value("tousu_policy").await.unwrap();
    let stored = store.get("current").await.unwrap().expect("published");
    assert_eq!(stored.as_ref(), std::fs::read(&policy).unwrap().as_slice());
}
