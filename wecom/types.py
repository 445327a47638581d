"""Shapes of WeCom answers, as documented (API.md §3). ``total=False``: WeCom omits empty fields."""

from __future__ import annotations

from typing import Any, TypedDict


class WeComResponse(TypedDict, total=False):
    errcode: int
    errmsg: str


class TokenResponse(WeComResponse, total=False):
    access_token: str
    expires_in: int


class UserResponse(WeComResponse, total=False):
    userid: str
    name: str
    department: list[int]
    main_department: int
    position: str
    status: int  # 1 active, 2 disabled, 4 not activated, 5 left
    avatar: str
    open_userid: str


class DeptUser(TypedDict, total=False):
    userid: str
    department: int


class UserIdListPage(WeComResponse, total=False):
    dept_user: list[DeptUser]
    next_cursor: str


class FollowUserListResponse(WeComResponse, total=False):
    follow_user: list[str]


class ExternalUserIdListResponse(WeComResponse, total=False):
    external_userid: list[str]


class ExternalContact(TypedDict, total=False):
    external_userid: str
    name: str
    type: int  # 1 WeChat user, 2 WeCom user
    avatar: str
    gender: int
    unionid: str
    corp_name: str
    corp_full_name: str
    position: str


class FollowTag(TypedDict, total=False):
    group_name: str
    tag_name: str
    tag_id: str
    type: int


class FollowUser(TypedDict, total=False):
    userid: str
    remark: str
    description: str
    createtime: int
    tags: list[FollowTag]
    tag_id: list[str]
    remark_corp_name: str
    remark_mobiles: list[str]
    add_way: int
    state: str
    oper_userid: str


class ExternalContactPage(WeComResponse, total=False):
    external_contact: ExternalContact
    follow_user: list[FollowUser]
    next_cursor: str


class ExternalContactWithFollow(TypedDict, total=False):
    external_contact: ExternalContact
    follow_info: FollowUser


class BatchGetByUserPage(WeComResponse, total=False):
    external_contact_list: list[ExternalContactWithFollow]
    next_cursor: str
    fail_info: dict[str, Any]


class CorpTag(TypedDict, total=False):
    id: str
    name: str
    create_time: int
    order: int
    deleted: bool


class CorpTagGroup(TypedDict, total=False):
    group_id: str
    group_name: str
    create_time: int
    order: int
    deleted: bool
    tag: list[CorpTag]


class CorpTagListResponse(WeComResponse, total=False):
    tag_group: list[CorpTagGroup]


class AddCorpTagResponse(WeComResponse, total=False):
    tag_group: CorpTagGroup


class AddContactWayResponse(WeComResponse, total=False):
    config_id: str
    qr_code: str


class ContactWayResponse(WeComResponse, total=False):
    contact_way: dict[str, Any]


class ContactWayRef(TypedDict, total=False):
    config_id: str


class ContactWayListPage(WeComResponse, total=False):
    contact_way: list[ContactWayRef]
    next_cursor: str


class MediaUploadResponse(WeComResponse, total=False):
    type: str
    media_id: str
    created_at: str


class TemplateIdResponse(WeComResponse, total=False):
    template_id: str


class GroupWelcomeTemplateResponse(WeComResponse, total=False):
    text: dict[str, Any]
    image: dict[str, Any]
    link: dict[str, Any]
    miniprogram: dict[str, Any]
    file: dict[str, Any]
    video: dict[str, Any]


class GroupChatRef(TypedDict, total=False):
    chat_id: str
    status: int


class GroupChatListPage(WeComResponse, total=False):
    group_chat_list: list[GroupChatRef]
    next_cursor: str


class GroupMember(TypedDict, total=False):
    userid: str
    type: int  # 1 member, 2 customer
    unionid: str
    join_time: int
    join_scene: int
    invitor: dict[str, str]
    group_nickname: str
    name: str
    state: str


class GroupChat(TypedDict, total=False):
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str
    member_list: list[GroupMember]
    admin_list: list[dict[str, str]]
    member_version: str


class GroupChatResponse(WeComResponse, total=False):
    group_chat: GroupChat


class GroupChatStatisticResponse(WeComResponse, total=False):
    total: int
    next_offset: int
    items: list[dict[str, Any]]


class ConfigIdResponse(WeComResponse, total=False):
    config_id: str


class JoinWayResponse(WeComResponse, total=False):
    join_way: dict[str, Any]


class AddMsgTemplateResponse(WeComResponse, total=False):
    fail_list: list[str]
    msgid: str


class GroupMsgListPage(WeComResponse, total=False):
    group_msg_list: list[dict[str, Any]]
    next_cursor: str


class GroupMsgTaskPage(WeComResponse, total=False):
    task_list: list[dict[str, Any]]  # userid, status (0 not sent, 2 sent), send_time
    next_cursor: str


class GroupMsgSendResultPage(WeComResponse, total=False):
    # external_userid / chat_id, userid, status (0 not sent, 1 sent, 2 not a friend, 3 quota), send_time
    send_list: list[dict[str, Any]]
    next_cursor: str


class TransferOutcome(TypedDict, total=False):
    external_userid: str
    errcode: int  # 0 = transfer started, not finished


class TransferCustomerResponse(WeComResponse, total=False):
    customer: list[TransferOutcome]


class TransferStatus(TypedDict, total=False):
    external_userid: str
    status: int  # 1 done, 2 waiting, 3 refused, 4 takeover at its cap
    takeover_time: int


class TransferResultPage(WeComResponse, total=False):
    customer: list[TransferStatus]
    next_cursor: str


class UnassignedCustomer(TypedDict, total=False):
    handover_userid: str
    external_userid: str
    dimission_time: int


class UnassignedListPage(WeComResponse, total=False):
    info: list[UnassignedCustomer]
    is_last: bool
    next_cursor: str


class FailedChat(TypedDict, total=False):
    chat_id: str
    errcode: int
    errmsg: str


class GroupChatTransferResponse(WeComResponse, total=False):
    failed_chat_list: list[FailedChat]
