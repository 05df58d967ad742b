//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`: what clients size their requests by.

use crate::on_both_backends;
use crate::support::{Backend, spawn_app};
use reqwest::StatusCode;

on_both_backends!(discovery_documents);

async fn discovery_documents(b: Backend) {
    let app = spawn_app(b).await;
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, StatusCode::OK);
    assert_eq!(spc.header("content-type").as_deref(), Some("application/scim+json"));
    let s = &spc.body;
    assert_eq!(s["patch"]["supported"], true);
    assert_eq!(s["bulk"]["supported"], true);
    assert_eq!(s["bulk"]["maxOperations"], 100);
    assert_eq!(s["bulk"]["maxPayloadSize"], 8 * 1024 * 1024);
    assert_eq!(s["filter"]["supported"], true);
    assert_eq!(s["etag"]["supported"], true);
    assert_eq!(s["sort"]["supported"], true);
    assert_eq!(s["changePassword"]["supported"], false);
    assert_eq!(s["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let rts = app.get("/ResourceTypes").await.body;
    assert_eq!(rts["totalResults"], 2);
    let user_rt = app.get("/ResourceTypes/User").await.body;
    assert_eq!(user_rt["endpoint"], "/Users");
    assert_eq!(
        user_rt["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    app.get("/ResourceTypes/Printer").await.assert_error(404, None);

    let schemas = app.get("/Schemas").await.body;
    assert_eq!(schemas["totalResults"], 3);
    let user = app.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await.body;
    let attrs = user["attributes"].as_array().unwrap();
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");
    app.get("/Schemas/urn:example:nope").await.assert_error(404, None);
}
