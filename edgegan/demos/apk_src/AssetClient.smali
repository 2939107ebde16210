# WebViewAssetLoader in miniature (androidx cannot be compiled here): answers every request for
# https://appassets.androidplatform.net/assets/PATH from AssetManager.open(PATH) with a MIME type
# from the extension (application/wasm matters: streaming compilation checks it); any other
# request, or a missing asset, gets a 404, so the page can reach nothing outside the APK.
.class public L@PKGPATH@/AssetClient;
.super Landroid/webkit/WebViewClient;

.field private final assets:Landroid/content/res/AssetManager;

.method public constructor <init>(Landroid/content/res/AssetManager;)V
    .registers 2
    invoke-direct {p0}, Landroid/webkit/WebViewClient;-><init>()V
    iput-object p1, p0, L@PKGPATH@/AssetClient;->assets:Landroid/content/res/AssetManager;
    return-void
.end method

.method private static mime(Ljava/lang/String;)Ljava/lang/String;
    .registers 3
    const-string v0, ".html"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_html
    const-string v0, "text/html"
    return-object v0
    :not_html
    const-string v0, "js"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_js
    const-string v0, "text/javascript"
    return-object v0
    :not_js
    const-string v0, ".wasm"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_wasm
    const-string v0, "application/wasm"
    return-object v0
    :not_wasm
    const-string v0, ".json"
    invoke-virtual {p0, v0}, Ljava/lang/String;->endsWith(Ljava/lang/String;)Z
    move-result v1
    if-eqz v1, :not_json
    const-string v0, "application/json"
    return-object v0
    :not_json
    const-string v0, "application/octet-stream"
    return-object v0
.end method

.method public shouldInterceptRequest(Landroid/webkit/WebView;Landroid/webkit/WebResourceRequest;)Landroid/webkit/WebResourceResponse;
    .registers 12
    invoke-interface {p2}, Landroid/webkit/WebResourceRequest;->getUrl()Landroid/net/Uri;
    move-result-object v0
    invoke-virtual {v0}, Landroid/net/Uri;->getHost()Ljava/lang/String;
    move-result-object v1
    const-string v2, "appassets.androidplatform.net"
    invoke-virtual {v2, v1}, Ljava/lang/String;->equals(Ljava/lang/Object;)Z
    move-result v3
    if-eqz v3, :not_found
    invoke-virtual {v0}, Landroid/net/Uri;->getPath()Ljava/lang/String;
    move-result-object v1
    if-eqz v1, :not_found
    const-string v2, "/assets/"
    invoke-virtual {v1, v2}, Ljava/lang/String;->startsWith(Ljava/lang/String;)Z
    move-result v3
    if-eqz v3, :not_found
    const-string v2, ".."
    invoke-virtual {v1, v2}, Ljava/lang/String;->contains(Ljava/lang/CharSequence;)Z
    move-result v3
    if-nez v3, :not_found
    const/16 v2, 0x8
    invoke-virtual {v1, v2}, Ljava/lang/String;->substring(I)Ljava/lang/String;
    move-result-object v1
    :try_start
    iget-object v2, p0, L@PKGPATH@/AssetClient;->assets:Landroid/content/res/AssetManager;
    invoke-virtual {v2, v1}, Landroid/content/res/AssetManager;->open(Ljava/lang/String;)Ljava/io/InputStream;
    move-result-object v4
    :try_end
    .catch Ljava/io/IOException; {:try_start .. :try_end} :not_found
    invoke-static {v1}, L@PKGPATH@/AssetClient;->mime(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v2
    new-instance v3, Landroid/webkit/WebResourceResponse;
    const/4 v5, 0x0
    invoke-direct {v3, v2, v5, v4}, Landroid/webkit/WebResourceResponse;-><init>(Ljava/lang/String;Ljava/lang/String;Ljava/io/InputStream;)V
    return-object v3

    :not_found
    new-instance v3, Landroid/webkit/WebResourceResponse;
    const-string v4, "text/plain"
    const/4 v5, 0x0
    const/16 v6, 0x194
    const-string v7, "Not Found"
    const/4 v8, 0x0
    new-instance v9, Ljava/io/ByteArrayInputStream;
    const/4 v2, 0x0
    new-array v2, v2, [B
    invoke-direct {v9, v2}, Ljava/io/ByteArrayInputStream;-><init>([B)V
    invoke-direct/range {v3 .. v9}, Landroid/webkit/WebResourceResponse;-><init>(Ljava/lang/String;Ljava/lang/String;ILjava/lang/String;Ljava/util/Map;Ljava/io/InputStream;)V
    return-object v3
.end method
