//! `/cache/redis/info`: Redis's `INFO` and `CLIENT LIST` replies as JSON, read the way the
//! Python Redis client LiteLLM uses reads them, so the route answers with the same shape.
//!
//! `INFO`: one `key:value` per line, `#` section titles skipped. A value is a number when it
//! reads as one (a float when it holds a `.`), a list when it is comma-separated, and an
//! object when its items are `name=value` (the keyspace lines: `db0:keys=1,expires=0`).
//! `module` lines gather under `modules`; a line without `:` goes to `__raw__`.
//! `CLIENT LIST`: one client per line, `name=value` tokens; a token without `=` continues the
//! previous value (an address with a space in it).

use serde_json::{Map, Value};

pub fn parse_info(text: &str) -> Value {
    let mut info = Map::new();
    let push = |info: &mut Map<String, Value>, key: &str, v: Value| {
        if let Value::Array(items) = info.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
            items.push(v);
        }
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((mut key, mut value)) = line.split_once(':') else {
            push(&mut info, "__raw__", Value::String(line.into()));
            continue;
        };
        // `cmdstat_host:` is the one key with a colon in it.
        if key == "cmdstat_host" {
            (key, value) = line.rsplit_once(':').unwrap_or((key, value));
        }
        if key == "module" {
            push(&mut info, "modules", info_value(value));
        } else {
            info.insert(key.into(), info_value(value));
        }
    }
    Value::Object(info)
}

fn info_value(v: &str) -> Value {
    if !v.contains('=') {
        if !v.contains(',') {
            return scalar(v);
        }
        return v
            .split(',')
            .filter(|s| !s.is_empty())
            .map(info_value)
            .collect();
    }
    let mut sub = Map::new();
    for item in v.split(',').filter(|s| !s.is_empty()) {
        match item.rsplit_once('=') {
            Some((k, x)) => sub.insert(k.into(), info_value(x)),
            None => sub.insert(item.into(), Value::Bool(true)),
        };
    }
    Value::Object(sub)
}

fn scalar(v: &str) -> Value {
    let number = if v.contains('.') {
        v.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    } else {
        v.parse::<i64>()
            .map(Into::into)
            .or_else(|_| v.parse::<u64>().map(Into::into))
            .ok()
    };
    number.map_or_else(|| Value::String(v.into()), Value::Number)
}

pub fn parse_client_list(text: &str) -> Vec<Value> {
    let mut clients = Vec::new();
    for line in text.lines() {
        let mut client = Map::new();
        let mut last: Option<&str> = None;
        for token in line.split(' ') {
            if let Some((k, v)) = token.split_once('=') {
                client.insert(k.into(), Value::String(v.into()));
                last = Some(k);
            } else if let Some(Value::String(s)) = last.and_then(|k| client.get_mut(k)) {
                s.push(' ');
                s.push_str(token);
            }
        }
        if !client.is_empty() {
            clients.push(Value::Object(client));
        }
    }
    clients
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_reads_as_the_python_client_reads_it() {
        let text = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nprocess_id:42\r\n\
                    uptime_in_days:0\r\nmem_fragmentation_ratio:1.25\r\nhz:10\r\nneg:-3\r\n\
                    big:18446744073709551615\r\nexecutable:/usr/bin/redis-server\r\n\
                    config_file:\r\nlist:a,b,,3\r\n\r\n# Keyspace\r\n\
                    db0:keys=3,expires=1,avg_ttl=0\r\nmodule:name=search,ver=20600\r\n\
                    module:name=json,ver=20400\r\ncmdstat_host:calls=1,usec=2\r\nflag:x=1,solo\r\n\
                    loose line\r\n";
        assert_eq!(
            parse_info(text),
            json!({
                "redis_version": "7.0.15",
                "redis_mode": "standalone",
                "process_id": 42,
                "uptime_in_days": 0,
                "mem_fragmentation_ratio": 1.25,
                "hz": 10,
                "neg": -3,
                "big": 18446744073709551615u64,
                "executable": "/usr/bin/redis-server",
                "config_file": "",
                "list": ["a", "b", 3],
                "db0": {"keys": 3, "expires": 1, "avg_ttl": 0},
                "modules": [{"name": "search", "ver": 20600}, {"name": "json", "ver": 20400}],
                "cmdstat_host": {"calls": 1, "usec": 2},
                "flag": {"x": 1, "solo": true},
                "__raw__": ["loose line"],
            })
        );
    }

    #[test]
    fn client_list_keeps_values_as_text_and_joins_spaced_ones() {
        let text = "id=3 addr=127.0.0.1:5000 name= age=7 cmd=client|list\n\
                    id=4 addr=/tmp/redis sock/r.sock:0 db=0\n";
        assert_eq!(
            parse_client_list(text),
            [
                json!({"id": "3", "addr": "127.0.0.1:5000", "name": "", "age": "7", "cmd": "client|list"}),
                json!({"id": "4", "addr": "/tmp/redis sock/r.sock:0", "db": "0"}),
            ]
        );
    }
}
