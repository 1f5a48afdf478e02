use std::process::Command;

#[test]
fn invalid_configuration_exits_64_naming_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_tousu-service"))
        .arg("intake")
        .env("TOUSU_INTAKE_DATABASE_URL", "mysql://localhost/tousu")
        .output()
        .expect("run tousu-service");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database_url"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_tousu-service"))
        .arg("desk")
        .env("TOUSU_DATABASE_URL", "postgres://localhost/tousu")
        .env("TOUSU_DESK_HTTP_ADDR", "not-an-address")
        .output()
        .expect("run tousu-service");
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("http_addr")
    );
}
